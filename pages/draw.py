"""Draw (home): draw or upload one character and see what the active model reads, after every stroke."""
import streamlit as st
from streamlit_drawable_canvas import st_canvas

import kmnist_live
from kmnist import figures
from kmnist.predict import top_k
from kmnist.preprocess import MAX_UPLOAD_BYTES, BadImageError, EmptyImageError, prepare
from pages import common

common.enter()  # inside app.py's frame, even on a first deep link

CANVAS_PX = 300
INJECTED = "draw_injected_image"  # tests put an RGBA/gray array here, as the canvas would send
EXAMPLES = 6  # training images shown per top-5 class
LIVE, SERVER = "Live (in your browser)", "Server"  # where the model reads the drawing


def upload_picker():
    return st.file_uploader("…or upload a picture of one character (PNG or JPEG)", type=["png", "jpg", "jpeg"],
                            max_upload_size=MAX_UPLOAD_BYTES // (1024 * 1024), key="upload")


def clear() -> None:
    # A new key mounts a fresh, empty canvas.
    st.session_state["canvas_clears"] = st.session_state.get("canvas_clears", 0) + 1


st.title("Draw a character")
run = common.active_run_or_stop()
st.caption("Draw one hiragana in Kuzushiji (cursive) style; the model reads it whenever you lift the pen. "
           f"The active model knows {len(run.classes)} characters: " + " ".join(c.char for c in run.classes))

live_ok = kmnist_live.available(run)
mode = st.radio("Recognise", [LIVE, SERVER], index=0 if live_ok else 1, horizontal=True, key="draw_mode",
                disabled=not live_ok, help="Live: the model runs in your browser and answers while the pen moves. "
                "Server: the app reads the drawing each time the pen lifts (any model, and uploads).")
hint = "Draw a character on the canvas (or upload a picture) and the prediction appears here."
# An upload (or a test's injected drawing) is read on the server, whichever the mode.
server_input = st.session_state.get("upload") is not None or st.session_state.get(INJECTED) is not None
if mode == LIVE and live_ok and not server_input:
    drawing = kmnist_live.live_canvas(run, key="live-canvas")
    upload_picker()
    if drawing is None:
        common.stop("Draw a character on the canvas: the answer appears beside it while you draw.")
    st.session_state[common.LAST_DRAWING] = drawing.image
    guesses = top_k(drawing.probs, run.classes, k=5)
    st.caption(f"Read in your browser as **{guesses[0].char}** ({guesses[0].prob:.0%}) in {drawing.infer_ms:.1f} ms; "
               "the server ran no model for this drawing.")
else:
    left, right = st.columns([5, 7], gap="large")
    with left:
        width = st.slider("Stroke width", 4, 40, 16, key="stroke_width")
        canvas = st_canvas(stroke_width=width, stroke_color="#000000", background_color="#ffffff",
                           height=CANVAS_PX, width=CANVAS_PX, drawing_mode="freedraw", return_image_data=True,
                           update_streamlit=True, key=f"canvas-{st.session_state.get('canvas_clears', 0)}")
        st.button("Clear", on_click=clear, help="Empty the canvas (the canvas toolbar also has undo)")
        upload = upload_picker()

    with right:
        injected = st.session_state.get(INJECTED)
        if injected is not None:
            image = injected
        elif upload is not None:
            st.caption(f"Reading the uploaded file {upload.name}; remove it to go back to the canvas.")
            image = upload.getvalue()
        else:
            image = canvas.image_data
        if image is None:
            common.stop(hint)
        try:
            seen = prepare(image, run.framing)
        except EmptyImageError:
            common.stop(hint)
        except BadImageError as e:
            st.error(f"Cannot use that file: {e}. Upload a PNG or JPEG picture of one character.")
            st.stop()
        st.session_state[common.LAST_DRAWING] = seen
        guesses = top_k(common.predictor(run)(seen), run.classes, k=5)
        best = guesses[0]
        metric_col, seen_col = st.columns(2)
        with metric_col:
            st.metric(label="Prediction", value=best.char)
            st.caption(f"**{best.romaji}** · {best.prob:.1%} probability")
        with seen_col:
            st.image(figures.enlarge(seen, 5), caption="What the model sees: the 28×28 input after framing")
        st.plotly_chart(figures.top_guesses(guesses), key="top5")

name = run.config.dataset
images = common.array(name, "train", "imgs")
picks = common.samples(name, "train", len(run.classes), EXAMPLES)
st.subheader("Training images of these classes")
if images is None or picks is None:
    st.info("Training images are not here, so no examples can be shown. "
            + common.missing_note(name, "train", "imgs" if images is None else "labels"))
else:
    st.caption(f"Random {name} training images of each top-5 class, to compare with your drawing.")
    cols = st.columns(len(guesses))
    for col, g in zip(cols, guesses):
        with col:
            common.show_strip(images[picks[g.index]], f"{g.char} {g.romaji} · {g.prob:.1%}", cols=3)
