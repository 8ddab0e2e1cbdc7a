"""Audio: recordings in, fixed-length clips out. Decoding and shaping one clip (``clip``), what a
file's place says about it (``layout``: label, speaker), the Preprocess stage's core
(``preprocess``) and its manifest of kept and rejected files (``manifest``, the one reader and
writer), its plots (``plots``), and the synthetic demo recordings (``espeak``, ``demo_data``)."""
