"""An edition's life, owned here: its kind and states (``states``), the one send
(``sending``), the weekly job and approval (``weekly``), alerts now, later or cancelled
(``alerts``), and failures that are seen (``failures``)."""
