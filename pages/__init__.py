"""The app's pages; app.py is the frame and router around them (see app.py `enter`)."""
