"""Loopback stand-ins of the chat vendors' endpoints (DingTalk, WeCom, Feishu) and an SMTP
server with STARTTLS: they check what the vendor checks and answer with the vendor's codes."""
