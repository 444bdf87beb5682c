"""Who is signed in, and how hard someone may try: browser sessions kept in the database,
the failure throttle (logins now; enrollment codes and pass look-ups can use the same one),
the caller's address behind trusted proxies, and the ``auth`` CLI."""
