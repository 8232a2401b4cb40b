"""API keys the security tests use (made up here; never a real secret)."""

KEY_A = "alpha-key-0123456789"
KEY_B = "bravo-key-9876543210"
FILE_KEY = "file-key-abcdefghijkl"
ROTATED_KEY = "rotated-key-mnopqrstuv"
ALL_KEYS = (KEY_A, KEY_B, FILE_KEY, ROTATED_KEY)
