"""Bounded window state: per-key state with a size bound and TTL (:mod:`.state`), a sliding-window sum that fires once
per window (:mod:`.sliding`) and the finding log-record cooldown (:mod:`.cooldown`). The windowed rules
(``tenantwatch.rules.bulk_write`` and the others) and the response actions count on them."""
