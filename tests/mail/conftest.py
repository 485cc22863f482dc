from tests.mailbox import smtp_server

__all__ = ["smtp_server"]
