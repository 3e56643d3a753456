"""Web Push: subscriptions, the offline fan-out, preferences and quiet hours.

- `guard`: which endpoints a push may go to (public https hosts, or the allow-list).
- `subscriptions`: validating and storing devices.
- `preferences`: per-type switches and quiet hours, as pure functions; `store`: their
  storage, held pushes and the admin's statistics.
- `payload`: what a push carries, within the Web Push limits.
- `sender`: encryption, VAPID, HTTP and retries; `dispatch`: delivery to a person's
  devices, once each; `records`: `push_logs`, written in batches.
- `fanout`: the consumer of the push stream and the grace-period loop; `digest`: the
  summary sent when quiet hours end. `service.run_push` runs them in `floorbell worker`.
"""
