namespace Centrifugo.Actors.Outbox;

/// <summary>One outbox row as read (spec §2.2). Payload is the raw column value as UTF-8 bytes (bytea, jsonb, json or text).</summary>
internal sealed record OutboxRow(long Id, string Method, ReadOnlyMemory<byte> Payload, int Partition);

/// <summary>A row to move to the dead-letter table, with the reason (never a secret).</summary>
internal sealed record DeadLetter(long Id, string Reason);
