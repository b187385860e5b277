"""Draw (home): draw or upload one character, see what the active model reads, and learn from it: the source
kanji, forms to copy or trace, the training images it resembles, where the model looked, practice rounds, and
"Right?" to save the drawing to your own dataset.

Two canvases read the drawing. Live (the default, kmnist_live): the run's model.onnx answers in the browser while
the pen moves and hands the finished drawing to Python on pen up. Server (streamlit-drawable-canvas): the app reads
the drawing each time the pen lifts; any run, also one without model.onnx. Both, and uploads, become a
`tutor.Drawn` (framed 28x28 + raw picture) and `answer` takes it from there, whichever input made it.

Speed: the canvas and everything that depends on the drawing live in one st.fragment, so a stroke reruns only
that part; the drawing-independent parts (modes, forms gallery) run once per visit.
"""
import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

import app
import kmnist_live
from kmnist import classes, drawings, figures, glyphs, runs, settings, tutor, unknown
from kmnist.classes import HENTAIGANA_NOTE
from kmnist.predict import top_k
from kmnist.preprocess import MAX_UPLOAD_BYTES, BadImageError, EmptyImageError, prepare
from pages import cached, common, run_picker

app.enter()  # inside app.py's frame, even on a first deep link

CANVAS_PX = 300
INJECTED = "draw_injected_image"  # tests put an RGBA/gray array here, as the server canvas would send
SHOWN_FORMS = 8  # forms per class shown in strips and offered for tracing
NEAREST = 8  # nearest forms shown for a drawing
MODES = ["Draw", "Trace", "Practice"]
LIVE, SERVER = "Live (in your browser)", "Server"  # where the model reads the drawing
# Session keys: the drawing survives leaving the page (the server canvas is redrawn from its strokes).
SOURCE, STROKES, RESTORE, LAST = "draw_source", "draw_strokes", "draw_restore", "draw_last"
SAVED, TARGET, TALLY = "draw_saved", "practice_target", "practice_tally"
WHERE = "draw_where"  # Live or Server as last chosen: the radio's own state goes when the page is left


@st.cache_resource(max_entries=3, hash_funcs=cached.BY_MODEL,
                   show_spinner="Finding the most typical training images of each class…")
def forms(run: runs.Run) -> tutor.Forms | None:
    # Stored forms need no model: Keras is loaded only to compute forms for a run that ships none.
    return tutor.find_forms(run) or tutor.forms_for(run, cached.model(run))


@st.cache_resource(max_entries=3, hash_funcs=cached.BY_MODEL, show_spinner="Preparing the tutor…")
def explainer(run: runs.Run) -> tutor.Explainer:
    return tutor.Explainer(cached.model(run), forms(run))


def canvas_key(kind: str) -> str:
    return f"{kind}-{st.session_state.get('canvas_clears', 0)}"


def upload_key() -> str:
    n = st.session_state.get("upload_clears", 0)
    return f"upload-{n}" if n else "upload"  # a new key empties the uploader


def clear() -> None:
    # A new key mounts a fresh, empty canvas; the kept drawing goes too.
    st.session_state["canvas_clears"] = st.session_state.get("canvas_clears", 0) + 1
    for key in (STROKES, RESTORE, LAST):
        st.session_state.pop(key, None)


def use(source: str) -> None:
    """The latest input wins: a stroke after an upload reads the canvas, a new upload reads the file."""
    st.session_state[SOURCE] = source


def drew() -> None:
    use("canvas")


def remove_upload() -> None:
    st.session_state["upload_clears"] = st.session_state.get("upload_clears", 0) + 1
    st.session_state.pop(LAST, None)
    use("canvas")


def mode_changed() -> None:
    # Practice scores the drawing on the canvas against the character it names: a drawing made before, in
    # another mode, is no attempt at it, so Practice starts on an empty canvas.
    if st.session_state.get("tutor_mode") == "Practice":
        clear()


def new_target(num_classes: int) -> None:
    st.session_state[TARGET] = tutor.next_target(num_classes, np.random.default_rng(), st.session_state.get(TARGET))
    clear()


def server_canvas(run, background: bytes) -> tutor.Drawn | None:
    """The drawable canvas with its tools; what it holds, framed on the server (None while it holds no ink)."""
    key = canvas_key("canvas")
    if key not in st.session_state:  # a fresh mount: redraw the strokes kept from the last visit
        st.session_state[RESTORE] = st.session_state.get(STROKES)
    canvas = st_canvas(stroke_width=st.session_state.get("stroke_width", 16), stroke_color="#000000",
                       background_image=background, height=CANVAS_PX, width=CANVAS_PX, drawing_mode="freedraw",
                       return_image_data=True, update_streamlit=True,
                       initial_drawing=st.session_state.get(RESTORE), on_change=drew, key=key)
    if canvas.json_data and canvas.json_data.get("objects"):
        st.session_state[STROKES] = canvas.json_data
    clear_col, width_col = st.columns([1, 2])
    clear_col.button("Clear", on_click=clear, help="Empty the canvas (the canvas toolbar also has undo)")
    width_col.slider("Stroke width", 4, 40, 16, key="stroke_width", label_visibility="collapsed",
                     help="Stroke width")
    injected = st.session_state.get(INJECTED)
    image = canvas.image_data if injected is None else injected
    if image is None:
        return None
    try:
        return tutor.Drawn(prepare(image, run.framing), image, "canvas")
    except EmptyImageError:
        return None


def live_canvas(run, background: bytes | None) -> tutor.Drawn | None:
    """The live canvas (its own tools and top 5 inside); the last drawing the pen lifted from, read in the browser."""
    drawing = kmnist_live.live_canvas(run, key=canvas_key("live-canvas"), background=background, on_change=drew,
                                      answer=cached.predictor(run).read)  # answers until the browser model is ready
    if drawing is None:
        return None
    return tutor.Drawn(drawing.image, drawing.png or None, "live", drawing.probs, drawing.score)


def current(run, drawn: tutor.Drawn | None, upload, live: bool) -> tutor.Drawn | str | None:
    """The drawing to read, a message saying why there is none, or None when nothing is drawn yet.

    A file that is no readable picture raises BadImageError."""
    if upload is not None and (st.session_state.get(SOURCE, "upload") == "upload" or drawn is None):
        try:
            return tutor.Drawn(prepare(upload.getvalue(), run.framing), upload.getvalue(), "upload")
        except EmptyImageError:
            return (f"The picture {upload.name} has no character in it: it looks blank. Upload a picture of "
                    "one character, dark on light or light on dark, or draw on the canvas.")
    if drawn is None and not live:  # the live canvas starts empty and cannot redraw a kept drawing
        return st.session_state.get(LAST)  # a drawing kept from an earlier visit, redrawn on the server canvas
    return drawn


def board(run, background: bytes | None, target: int | None, live: bool) -> None:
    """The canvas, the upload and everything that depends on the drawing: reruns alone after every stroke."""
    if live:
        drawn_now = live_canvas(run, background)
        answer_box = st.columns([7, 5])[0]  # as wide as the server canvas's answer column
    else:
        left, right = st.columns([5, 7], gap="large")
        with left:
            drawn_now = server_canvas(run, background or tutor.paper(CANVAS_PX))
        answer_box = right.container()
    # Explaining runs the Keras model on the server for every drawing (saliency, feature-space search). Live mode
    # keeps it off until asked, so a stroke costs the server no model work (and Keras, which Streamlit resets after
    # every run, stays unloaded); Server mode runs a model per stroke anyway, so it explains by default. The switch
    # heads the answer rather than the page, so that on a phone the canvas and its answer fit the first screen.
    explain = answer_box.toggle("Explain each answer", value=not live, key=f"draw_explain_{'live' if live else 'server'}",
                                help="Show where the model looked, and the nearest training images")
    if explain:
        explainer(run)  # traced now, before the first drawing
    upload = st.file_uploader("…or upload a picture of one character (PNG or JPEG)", type=["png", "jpg", "jpeg"],
                              max_upload_size=MAX_UPLOAD_BYTES // (1024 * 1024), on_change=use, args=("upload",),
                              key=upload_key())
    try:
        drawn = current(run, drawn_now, upload, live)
    except BadImageError as e:
        drawn = e
    if upload is not None:
        note, button = st.columns([3, 1])
        if isinstance(drawn, tutor.Drawn):  # a blank or unreadable file is explained beside the canvas instead
            note.caption(f"Reading the uploaded file {upload.name}; draw on the canvas to read your drawing "
                         "instead." if drawn.source == "upload" else
                         f"Reading your drawing; the uploaded file {upload.name} is set aside.")
        button.button("Remove upload", on_click=remove_upload, key="remove_upload")
    with answer_box:
        if isinstance(drawn, BadImageError):
            st.error(f"Cannot use that file: {drawn}. Upload a PNG or JPEG picture of one character.")
        elif isinstance(drawn, str):
            st.info(drawn)
        elif drawn is None:
            st.info("Draw a character on the canvas (or upload a picture) and the prediction appears "
                    + ("beside it while you draw." if live else "here."))
        else:
            if drawn.source != "live":
                st.session_state[LAST] = drawn
            answer(run, drawn, target, explain)
    if explain and isinstance(drawn, tutor.Drawn):
        resembles(run, drawn)


def answer(run, drawn: tutor.Drawn, target: int | None, explain: bool) -> None:
    """What the model reads, where it looked, practice scoring and "Right?", for one drawing."""
    st.session_state[common.LAST_DRAWING] = drawn.seen
    probs, score = (drawn.probs, drawn.score) if drawn.probs is not None else cached.predictor(run).read(drawn.seen)
    guesses = top_k(probs, run.classes, k=5)
    best = guesses[0]
    if score is not None and unknown.decide(run, score)[0]:
        none_of_these(run, best)
    metric_col, seen_col, looked_col = st.columns([2, 1, 1])
    with metric_col:
        st.metric(label="Prediction", value=best.char)
        st.caption(f"**{best.romaji}** · {best.prob:.1%} probability"
                   + (f" · from the kanji **{best.kanji}** (字母)" if best.kanji else " · the iteration mark"))
        if drawn.source == "live" and drawn.probs is not None:
            st.caption(f"Read in your browser as **{best.char}** ({best.prob:.0%}); its top 5 are beside the "
                       "canvas. The server only explains it.")
        elif drawn.source == "live":  # the browser's model is still loading: the server read it meanwhile
            st.caption(f"Read on the server as **{best.char}** ({best.prob:.0%}) while your browser loads the "
                       "model; its top 5 are beside the canvas.")
    seen_col.image(figures.enlarge(drawn.seen, 4), caption="What the model sees: the 28×28 input after framing")
    if explain:
        heat = explainer(run).saliency(drawn.seen, best.index)
        looked_col.image(figures.enlarge(tutor.overlay(drawn.seen, heat), 4),
                         caption=f"Where the model looked: pixels that sway {best.char} most glow")
    if target is not None:
        practice_score(run, drawn, probs, target)
    if drawn.source != "live":  # the live canvas shows its own top 5
        st.plotly_chart(figures.top_guesses(guesses), key="top5")
    right_or_not(run, drawn, best)


def none_of_these(run, best) -> None:
    """Say plainly that the drawing looks like none of the characters the model knows, and where all 49 are."""
    st.warning(f"**This looks like none of the {len(run.classes)} characters this model knows** "
               f"({' '.join(c.char for c in run.classes)}). The nearest it reads is {best.char}, but that is a "
               "guess at something it was never taught.", icon=":material/help:")
    st.page_link("pages/characters.py", label="How all 49 characters are written", icon=":material/menu_book:")


def practice_score(run, drawn: tutor.Drawn, probs: np.ndarray, target: int) -> None:
    attempt = tutor.score(probs, target)
    want = run.classes[target]
    if attempt.right:
        st.success(f"Right: the model reads {want.char} ({attempt.prob:.0%}).")
    else:
        st.warning(f"Not yet: the model reads {run.classes[attempt.predicted].char}; {want.char} has "
                   f"{attempt.prob:.0%}. Compare with its forms above.")
    if st.button("Score this attempt and go on", type="primary", key=f"score-{drawn.key}"):
        st.session_state.setdefault(TALLY, tutor.Tally()).record(attempt)
        new_target(len(run.classes))
        st.rerun(scope="app")  # the tally and the next character sit outside this fragment


def right_or_not(run, drawn: tutor.Drawn, best) -> None:
    """Confirm or correct the reading and keep the drawing in your drawings dataset."""
    if settings.public_mode():
        st.caption("Saving drawings is off on this public site: nothing a visitor does is written on the server.")
        return
    saved = st.session_state.setdefault(SAVED, {})
    if drawn.key in saved:
        st.success(f"Saved to your drawings ({drawings.NAME}) as {saved[drawn.key]}. Draw the next one, or see "
                   "them on the Dataset page.")
        return
    box = st.empty()  # the saved note replaces the question at once, without another run
    ask, act = box.container().columns([3, 2], vertical_alignment="bottom")
    table = classes.with_all_49(run.classes)  # any of the 49 can be saved: 5 drawings teach a new one
    truth = ask.selectbox("Right? This drawing shows", [c.index for c in table], index=best.index,
                          format_func=lambda i: table[i].label() + ("" if i < len(run.classes) else " · new"),
                          key=f"truth-{drawn.key}", help="Pick the character you meant if the model got it wrong. "
                          "Characters marked new are not known to this model yet: with 5 drawings of one saved, "
                          "a fine-tune on the Training page teaches it")
    char = table[truth].char
    label = f"Yes, save as {char}" if truth == best.index else f"Correct it: save as {char}"
    if act.button(label, key=f"save-{drawn.key}", help=f"Adds the drawing to the {drawings.NAME} dataset in the "
                  "data dir, for the Dataset page and for fine-tuning on the Training page"):
        try:
            drawings.save(drawn.seen, drawn.raw_png(), char, best.char, run.id, run.classes)
        except OSError as e:
            st.error(f"Could not save the drawing: {e}")
            return
        saved[drawn.key] = char
        box.success(f"Saved to your drawings ({drawings.NAME}) as {char}. Draw the next one, or see them on the "
                    "Dataset page.")


def resembles(run, drawn: tutor.Drawn) -> None:
    images, labels, sims = explainer(run).nearest(drawn.seen, NEAREST)
    if not len(images):
        return
    names = ", ".join(f"{run.classes[i].char} ({s:.2f})" for i, s in zip(labels, sims))
    common.show_strip(images, f"Nearest training images in the model's feature space: {names}", factor=2)


st.title("Draw a character")
run = run_picker.active_run_or_stop()
# Short, so that on a phone the canvas and its answer fit the first screen; the note waits behind the ?.
st.caption(f"Draw one of the {len(run.classes)} characters the active model knows, in Kuzushiji (cursive) style: "
           + " ".join(f"{c.char}({c.kanji})" if c.kanji else c.char for c in run.classes),
           help="The model reads the drawing whenever you lift the pen. " + HENTAIGANA_NOTE)
found = forms(run)
live_ok = kmnist_live.available(run)
mode_col, where_col = st.columns([3, 2])
with mode_col:
    mode = st.segmented_control("Mode", MODES, default=MODES[0], key="tutor_mode", on_change=mode_changed,
                                help="Draw freely; trace a typical form; or practise a character the page names"
                                ) or MODES[0]
with where_col:
    where = st.radio("Recognise", [LIVE, SERVER], index=0 if live_ok and st.session_state.get(WHERE) != SERVER
                     else 1, horizontal=True, key="draw_mode", disabled=not live_ok,
                     on_change=lambda: st.session_state.update({WHERE: st.session_state["draw_mode"]}),
                     help="Live: the model runs in your browser and answers while the pen moves. Server: the app "
                     "reads the drawing each time the pen lifts (any model).")
# A test's injected drawing stands for the server canvas's output, so it is read there.
live = where == LIVE and live_ok and st.session_state.get(INJECTED) is None
background = None  # plain paper
target = None
# One container above the canvas whatever the mode, so the canvas keeps its place (and its drawing) across modes.
header = st.container()
with header:
    if mode == "Trace":
        table = classes.with_all_49(run.classes)  # the model's characters, then the rest of the 49
        pick_col, form_col = st.columns([1, 2])
        chosen = pick_col.selectbox("Character to trace", [c.index for c in table], key="trace_class",
                                    format_func=lambda i: table[i].label() + ("" if i < len(run.classes)
                                                                              else " · no training images"))
        want = table[chosen]
        strip, what = found.of(chosen)[:SHOWN_FORMS] if found is not None else [], "most typical first"
        if not len(strip):  # no training images of it here: its Unicode hentaigana and modern kana, set in a font
            what, strip = glyphs.trace_forms(want.char)
        if not len(strip):
            form_col.info(f"No forms of {want.char} to trace here: no training images of it and no installed font "
                          "that carries it. The Characters page shows how each of the 49 is written.")
        else:
            if st.session_state.get("trace_form", 1) > len(strip):  # another character with fewer forms
                st.session_state["trace_form"] = 1
            which = (pick_col.slider("Form", 1, len(strip), 1, key="trace_form", help=f"Forms: {what}")
                     if len(strip) > 1 else 1)
            with form_col:
                common.show_strip(strip, f"Forms of {want.label()}, {what}; form {which} lies faintly under the "
                                  "pen", factor=2)
            background = tutor.trace_background(strip[which - 1], CANVAS_PX)
    elif mode == "Practice":
        if st.session_state.get(TARGET) is None or st.session_state[TARGET] >= len(run.classes):
            st.session_state[TARGET] = tutor.next_target(len(run.classes), np.random.default_rng())
        target = st.session_state[TARGET]
        want = run.classes[target]
        ask_col, tally_col = st.columns([2, 1])
        ask_col.markdown(f"### Draw {want.char}  ·  *{want.romaji}*"
                         + (f"  ·  from {want.kanji}" if want.kanji else ""))
        tally = st.session_state.get(TALLY) or tutor.Tally()
        tally_col.metric("This session", tally.summary())
        tally_col.button("Another character", on_click=new_target, args=(len(run.classes),), key="practice_next")
        if found is not None:
            common.show_strip(found.of(target)[:SHOWN_FORMS], f"How {want.char} is written: typical training forms",
                              factor=2)

st.fragment(board)(run, background, target, live)

if found is not None:
    with st.expander("How each character is written: the most typical training images of each class"):
        st.caption(f"The {SHOWN_FORMS} {found.dataset} training images of each class nearest to the class centre "
                   "in the active model's feature space. " + HENTAIGANA_NOTE)
        common.class_grid(found.images, [np.flatnonzero(found.labels == c.index)[:SHOWN_FORMS] for c in run.classes],
                          run.classes)
