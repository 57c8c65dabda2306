// Package alerting tells people what happened on the director, through
// three channels, without ever losing a word. Mail: the Pipeline chooses
// what to mail (filters, grouping window, dedup, flap damping, reminders,
// rate limit and digests, decided by pure functions over a saved state)
// and ends in Outbox.Put; the delivery half is the Mail type and its RFC
// 5322 rendering, the durable Outbox, the SMTP Sender and the Dispatcher
// that moves mail from the one to the other. Webhooks: the HookFeeder
// turns events into Deliveries in the same Outbox, each hook with its own
// Dispatcher and WebhookSender. The Alertmanager: alerts derived from the
// director's state (DeriveAlerts), not from events, re-sent and resolved
// as Prometheus does. Every channel chooses with a Filter.
//
// The guarantee below holds for webhook deliveries as for mail: 2xx is
// the server's 250, a 4xx other than 408 and 429 its 5xx, and the
// X-Lvsmon-Delivery header its Message-ID.
//
// # Delivery guarantee
//
// A mail is written to the outbox directory (temporary file, fsync,
// rename, fsync of the directory) before anything tries to send it, with
// its Date and Message-ID already fixed. It leaves the outbox only when
// the server answered 250 to the end of DATA: Dispatcher calls
// Outbox.Done first thing after that. Temporary failures (4xx replies,
// refused or dropped connections, timeouts, TLS trouble) are retried
// with exponential backoff and jitter (10 s doubling to 1 h by default);
// the attempt count, last error and next attempt time are stored with
// the mail, so the schedule survives a restart. A 5xx reply is
// permanent: the mail stays in the outbox marked Permanent, is reported
// (log, Stats) and is not retried until Outbox.Requeue.
//
// The one window for a duplicate is a crash, or a disk that refuses the
// unlink, between the server's 250 and Done reaching the disk: the mail
// is then sent again after the restart. It carries the same Message-ID,
// which the receiving side (or a human) can use to drop the copy. That
// is the at-least-once trade: the other order (Done before sending)
// would lose mail instead.
//
// Within one transaction all recipients share the fate of the message:
// a refused recipient fails the whole mail.
//
// # Secrets
//
// The SMTP password is read from a file or an environment variable at
// each send and never appears in a log line, an error text or the
// outbox; server replies are scrubbed of it (plain and base64) in case
// a server echoes it.
package alerting
