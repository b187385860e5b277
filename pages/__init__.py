"""The app's pages; app.py routes to them.

Streamlit treats a folder named pages/ beside the entry script as its legacy multipage layout until
app.py has called st.navigation once in the server process. So a deep link (say /evaluation) that is
the first request after a start would run the page bare, without the frame and sidebar. Importing this
package (every page does) leaves that mode and reruns, so app.py routes the request as usual.
"""
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

if PagesManager.uses_pages_directory and st.runtime.exists():
    PagesManager.uses_pages_directory = False
    st.rerun()
