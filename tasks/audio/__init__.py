"""Audio, the third modality: the track kept beside each download, log-mel spectrograms, per-second vectors."""
