namespace Centrifugo.Actors;

/// <summary>
/// The registry of log event-id bands: every <c>[LoggerMessage]</c> in this repository takes its id from the band
/// of the namespace it is declared in, and no id is used twice (the uniqueness test reflects over both assemblies).
/// Ids are part of the operator interface (docs and alerts name them), so an id is never renumbered once released;
/// a new message takes the next free id in its band.
/// </summary>
internal static class LogEvents
{
    /// <summary>A range of event ids and the namespaces whose messages may use it.</summary>
    internal sealed record Band(int First, int Last, string Subject, params string[] Namespaces)
    {
        public bool Contains(int id) => id >= First && id <= Last;
    }

    /// <summary>Every band, in id order. Keep docs/operations.md ("Logs") in step.</summary>
    public static IReadOnlyList<Band> Bands { get; } =
    [
        new(1000, 1099, "host: start, stop, start-up hints", "Centrifugo.Actors.Host", "Centrifugo.Actors.Hosting"),
        new(1100, 1199, "cluster formation and discovery", "Centrifugo.Actors.Hosting"),
        new(1200, 1299, "admin actions (leave, down)", "Centrifugo.Actors.Host"),
        new(1900, 1999, "Akka's own log lines, bridged", "Centrifugo.Actors.Hosting"),
        new(2000, 2099, "outbox passes and census", "Centrifugo.Actors.Outbox"),
        new(3000, 3099, "delivery to Centrifugo's HTTP API", "Centrifugo.Actors.Delivery"),
        new(3100, 3199, "outbox store: PostgreSQL start-up checks", "Centrifugo.Actors.Outbox"),
        new(3200, 3299, "outbox LISTEN/NOTIFY", "Centrifugo.Actors.Outbox"),
        new(4000, 4099, "Kafka: reading, group membership, dead letters", "Centrifugo.Actors.Kafka"),
        new(5000, 5099, "partition entities, sharding and the keeper", "Centrifugo.Actors.Partitions", "Centrifugo.Actors.Sharding", "Centrifugo.Actors.Hosting"),
    ];
}
