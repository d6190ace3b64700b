"""Signals: each finds evidence about one kind of fact (``base`` is the contract every signal
implements, ``registry`` the list a Warden runs and the policy reads, ``codes`` the table of
every evidence code)."""
