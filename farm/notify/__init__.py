"""Outbound notifications: every stored alert version and every incident change handed to an HTTP
receiver in batches, without ever slowing the store path.

- entries.py   what one notification is (the hand-off format other stages append to)
- outbox.py    the Redis side: the bounded `<p>:notify` list, the sender's inflight list
- delivery.py  one POST: body, signature, timeout, what counts as delivered
- sender.py    the supervised sender process: take, post, retry with backoff, dead-letter
(Its configuration keys are declared in farm/config/notify.py.)

Workers push a committed batch's entries in the same atomic call that acks it (farm/queue.py),
so a batch notifies when, and only when, it is acked, once.
"""
