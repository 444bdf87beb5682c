"""Every external channel goes through apprise: WeCom app messages (``wechat://``) and group bots
(``wecombot://``), DingTalk robots with signing (``dingtalk://secret@token``), Feishu
(``feishu://``), e-mail (``mailto://``), JSON webhooks (``json://``). apprise has no retries
and no receipts, so this returns what happened and the delivery log decides what to do."""

from __future__ import annotations

import apprise


def send(url: str, title: str, body: str) -> str | None:
    """Blocking (network): run in a worker thread. None when sent, else the error."""
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return "apprise does not accept this URL (unknown scheme or missing token)"
    if notifier.notify(body=body, title=title):
        return None
    return "the channel refused or did not answer"
