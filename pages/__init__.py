"""The app's pages; app.py is the frame and router around them (see pages/common.py `enter`)."""
