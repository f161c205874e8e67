"""``doorwatch demo``: a whole simulated school on this machine, with no other setup."""
