"""wadesk: WhatsApp desktop sender and headless HTTP gateway."""

__version__ = "0.1.0"
