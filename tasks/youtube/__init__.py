"""YouTube access through yt-dlp, shared by the stages that reach the site: the only package that imports
yt_dlp."""
