"""One router per resource or job family."""
