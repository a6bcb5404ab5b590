"""`dimbench verify`: the isolation and privilege checks against any database."""
