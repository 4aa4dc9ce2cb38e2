"""YouTube access through yt-dlp: the only package that imports yt_dlp."""
