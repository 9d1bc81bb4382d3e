"""Users, sessions and tokens: the use cases of the auth service and the ports they need."""
