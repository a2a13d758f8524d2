namespace Centrifugo.Actors;

/// <summary>
/// The registry of log event ids, like Npgsql's <c>NpgsqlEventId</c>: the bands, then every folder's ids as named
/// constants (<see cref="OutboxEventId"/> and its siblings below), which the folder's <c>…Log.cs</c> (its
/// <c>[LoggerMessage]</c> methods) names. Every id lies in a band of its folder's namespace and no id is used twice
/// (LogEventIdTests reflects over the constants and over the messages of the library and the host). Ids are part of
/// the operator interface (docs and alerts name them), so an id is never renumbered once released; a new message
/// takes the next free id in its band.
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
        new(5000, 5099, "partition entities, sharding and the keeper",
            "Centrifugo.Actors.Partitions", "Centrifugo.Actors.Sharding", "Centrifugo.Actors.Hosting"),
    ];
}

/// <summary>
/// The event ids of Hosting/ (its messages: <see cref="Hosting.HostingLog"/>).
/// </summary>
internal static class HostingEventId
{
    // 1000-1099: host: start, stop, start-up hints
    public const int SplitReads = 1010;

    // 1100-1199: cluster formation and discovery
    public const int DiscoveryWaiting = 1101;
    public const int DiscoveryJoining = 1102;
    public const int DiscoveryLookupFailed = 1103;
    // the PostgreSQL failure detector
    public const int LivenessLockHeld = 1110;
    public const int LivenessMemberReleased = 1111;
    public const int LivenessSessionLost = 1112;

    // 1900-1999: Akka's own log lines, bridged
    public const int AkkaMessage = 1900;
}

/// <summary>
/// The event ids of Outbox/ (its messages: <see cref="Outbox.OutboxLog"/>).
/// </summary>
internal static class OutboxEventId
{
    // 2000-2099: outbox passes and census
    public const int DeadLettered = 2001;
    public const int TemporaryFailure = 2002;
    public const int ConfigurationFault = 2003;
    public const int DatabaseError = 2004;
    public const int DecodeCrashed = 2005;
    public const int PassCrashed = 2006;
    public const int ContinuationFailed = 2008;
    public const int DeadLetterCopyStalled = 2009;
    public const int CensusFailed = 2010;
    public const int DeadLetterCopyRebuilt = 2011;
    public const int RetryingInPass = 2019;

    // 3100-3199: outbox store: PostgreSQL start-up checks
    public const int DeadLetterTableCreated = 3100;
    public const int RollbackFailed = 3101;
    public const int DeadLetterColumnAdded = 3102;
    public const int MissingPartitionIndex = 3103;
    public const int IdleInTransactionTimeout = 3104;
    public const int PoolTooLarge = 3105;
    public const int ReadAheadStale = 3106;
    public const int CentrifugoLockHeld = 3107;

    // 3200-3299: outbox LISTEN/NOTIFY
    public const int Listening = 3200;
    public const int ListenFailed = 3201;
    public const int InvalidPayload = 3202;
    public const int PartitionOutOfRange = 3203;
    public const int CallbackFailed = 3204;
    public const int UnusableDsn = 3205;
}

/// <summary>
/// The event ids of Delivery/ (its messages: <see cref="Delivery.DeliveryLog"/>).
/// </summary>
internal static class DeliveryEventId
{
    // 3000-3099: delivery to Centrifugo's HTTP API
    public const int Isolating = 3001;
    public const int CommandRejected = 3002;
    public const int ApiMisconfigured = 3003;
    public const int TemporaryFailure = 3004;
}

/// <summary>
/// The event ids of Kafka/ (its messages: <see cref="Kafka.KafkaLog"/>).
/// </summary>
internal static class KafkaEventId
{
    // 4000-4099: Kafka: reading, group membership, dead letters
    public const int HubStarted = 4000;
    public const int HubStopped = 4001;
    public const int ClientError = 4002;
    public const int FatalClientError = 4003;
    public const int Librdkafka = 4004;
    public const int ConsumeError = 4005;
    public const int Acquired = 4006;
    public const int Released = 4007;
    public const int CommittedLookupFailed = 4008;
    public const int CommitFailed = 4009;
    public const int PartitionCommitFailed = 4010;
    public const int FinalCommitAbandoned = 4011;
    public const int MetadataFailed = 4012;
    public const int Joined = 4013;
    public const int Left = 4014;
    public const int DeadLetterProducerError = 4020;
    public const int DeadLettered = 4021;
    public const int DeadLetterProducerReplaced = 4022;
    public const int TemporaryFailure = 4030;
    public const int ConfigurationFault = 4031;
    public const int DeadLetterFailed = 4032;
    public const int DecodeCrashed = 4033;
    public const int PassCrashed = 4034;
    public const int DeadLetterImpossible = 4035;
    public const int AttachFailed = 4040;
    public const int PartitionLost = 4042;
    public const int PositionRewound = 4050;
    public const int GroupAssigned = 4051;
    public const int GroupRevoked = 4052;
    public const int RevokeTimedOut = 4053;
    public const int GroupLost = 4054;
    public const int Frozen = 4055;
    public const int LocateFailed = 4070;
}

/// <summary>
/// The event ids of Partitions/ (its messages: <see cref="Partitions.PartitionsLog"/>).
/// </summary>
internal static class PartitionsEventId
{
    // 5000-5099: partition entities, sharding and the keeper
    public const int UnknownPartition = 5001;
    public const int LoopFailed = 5010;
    public const int OpenFailed = 5011;
}
