"""Pure business logic of Gaveurs Tasks: no dramatiq, fastapi or redis imports here."""
