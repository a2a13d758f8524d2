namespace Centrifugo.Actors.Outbox;

/// <summary>One outbox row as read (Centrifugo's outbox table: id, method, payload, partition, created_at). Payload is the raw column value
/// as UTF-8 bytes (bytea, jsonb, json or text).</summary>
/// <param name="PayloadBytes">The payload's size as the database measured it (<see cref="OutboxSql.PayloadSize"/>).</param>
/// <param name="PayloadOmitted">The payload is over payload_max_bytes and was not read (<paramref name="Payload"/> is empty).</param>
internal sealed record OutboxRow(
    long Id, string Method, ReadOnlyMemory<byte> Payload, int Partition, int PayloadBytes = 0, bool PayloadOmitted = false);

/// <summary>A row to move to the dead-letter table, with the reason (never a secret).</summary>
internal sealed record DeadLetter(long Id, string Reason);
