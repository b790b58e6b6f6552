"""`make run`: migrate, prepare, and supervise every process of the console."""
