"""Characters: all 49 Kuzushiji-49 characters as they are written: modern hiragana, romaji, the source kanji
(字母), the Unicode hentaigana of each sound (set in the app's own font), the most typical real training forms
where the data has them, and how many of your drawings each holds. `?char=の` opens one character's variants.
"""
import streamlit as st

import app
from kmnist import classes, drawings, figures, tutor
from pages import common

app.enter()  # inside app.py's frame, even on a first deep link

st.title("Characters")
st.caption("Kuzushiji-49 has 49 classes: 46 hiragana, the old ゐ and ゑ, and the iteration mark ゝ. "
           + classes.HENTAIGANA_NOTE + " Hover over a variant kana for its Unicode name.")
run = common.runs.active_run()
found = tutor.find_forms(run) if run is not None else None  # stored forms only: no model is loaded here
counts = drawings.counts(drawings.drawings())
rows = figures.character_rows(run.classes if run else [], found, counts)
known = [r.info.char for r in rows if r.known]
st.markdown(f"The active model{f' ({run.id})' if run else ''} knows {len(known)} of them"
            + (f": {' '.join(known)}" if known else "") + f". You have saved {sum(counts.values())} drawings; "
            "a character with at least 5 to learn from can be taught to a model on the Training page.")

chars = [r.info.char for r in rows]
asked = st.query_params.get("char")
pick = st.selectbox("One character's variants", chars, index=chars.index(asked) if asked in chars else None,
                    format_func=lambda ch: classes.make_class(chars.index(ch), ch).label(), key="characters_pick",
                    placeholder="Choose a character to see its variant kana large")
if pick is not None:
    st.query_params["char"] = pick
    row = rows[chars.index(pick)]
    st.html(figures.variants_html(row))
st.html(figures.characters_html(rows))
