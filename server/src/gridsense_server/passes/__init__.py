"""Electronic passes, server side: keys, resident and visitor passes, sign-in, reconciliation."""
