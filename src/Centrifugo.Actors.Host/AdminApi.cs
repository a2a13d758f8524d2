using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Centrifugo.Actors.Operations;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Host;

/// <summary>
/// The wire contract of the admin endpoint: its routes, the query of each request and the JSON of each answer, shared
/// by the endpoint (<see cref="AdminEndpoint"/>) and the CLI (<see cref="AdminClient"/>), serialised by
/// <see cref="AdminJson"/>. docs/operations.md documents the routes and fields, and users' scripts read them
/// (<c>--json</c>): a field is renamed here or nowhere.
/// </summary>
internal static class AdminPaths
{
    public const string Live = "/health/live";
    public const string Ready = "/health/ready";
    public const string Metrics = "/metrics";
    public const string Partitions = "/status/partitions";
    public const string Cluster = "/status/cluster";
    public const string Shards = "/status/shards";
    public const string Paused = "/status/paused";
    public const string Leave = "/cluster/leave";
    public const string Down = "/cluster/down";
    public const string Pause = "/partitions/pause";
    public const string Resume = "/partitions/resume";
    public const string LogLevel = "/log/level";
    public const string DeadLetters = "/dead-letters";
    public const string Replay = "/dead-letters/replay";
}

/// <summary>
/// The query parameters of a request. The endpoint binds the record from the query string (<c>[AsParameters]</c>,
/// names matched without case); the CLI sends <see cref="Query"/>. Values stay strings on the way in, so a malformed
/// one reaches the handler (and its message) after the token check instead of failing the binding.
/// </summary>
internal interface IAdminQuery
{
    string Query { get; }
}

/// <summary>GET /status/partitions: this node's partitions, or every partition in the cluster with scope=cluster.</summary>
internal sealed record PartitionsRequest(string? Scope) : IAdminQuery
{
    public static readonly PartitionsRequest ClusterWide = new("cluster");

    public bool IsClusterWide => Scope == ClusterWide.Scope;

    public string Query => AdminQuery.Of(("scope", Scope));
}

/// <summary>POST /cluster/leave[?address=] (default: the node that answers) and POST /cluster/down?address=.</summary>
internal sealed record MemberRequest(string? Address) : IAdminQuery
{
    public string Query => AdminQuery.Of(("address", Address));
}

/// <summary>POST /partitions/pause?id= and /partitions/resume?id=.</summary>
internal sealed record PartitionRequest(string? Id) : IAdminQuery
{
    public string Query => AdminQuery.Of(("id", Id));
}

/// <summary>POST /log/level?level= (Centrifugo's level names).</summary>
internal sealed record LogLevelRequest(string? Level) : IAdminQuery
{
    public string Query => AdminQuery.Of(("level", Level));
}

/// <summary>GET /dead-letters[?consumer=&amp;limit=]: every consumer's dead letters, or one consumer's.</summary>
internal sealed record DeadLettersRequest(string? Consumer, string? Limit) : IAdminQuery
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 10_000;

    public static DeadLettersRequest Of(string? consumer, int limit) => new(consumer, limit.ToString(CultureInfo.InvariantCulture));

    /// <summary>The limit asked for, at most <see cref="MaxLimit"/>; <see cref="DefaultLimit"/> when absent or not a positive
    /// number.</summary>
    public int LimitOrDefault() =>
        int.TryParse(Limit, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) && limit > 0
            ? Math.Min(limit, MaxLimit) : DefaultLimit;

    public string Query => AdminQuery.Of(("limit", Limit), ("consumer", Consumer));
}

/// <summary>POST /dead-letters/replay?consumer=&amp;ids=1,2 or &amp;all=true (exactly one of the two).</summary>
internal sealed record ReplayRequest(string? Consumer, string? Ids, string? All) : IAdminQuery
{
    public static ReplayRequest Of(string consumer, IReadOnlyList<long> ids, bool all) =>
        all ? new(consumer, null, "true")
            : new(consumer, string.Join(',', ids.Select(i => i.ToString(CultureInfo.InvariantCulture))), null);

    public bool IsAll => All == "true";

    public string Query => AdminQuery.Of(("consumer", Consumer), ("all", All), ("ids", Ids));
}

internal static class AdminQuery
{
    /// <summary>"?a=1&amp;b=x" of the parameters that have a value (escaped; commas kept, for id lists); "" when none has.</summary>
    public static string Of(params (string Name, string? Value)[] parameters)
    {
        var present = parameters.Where(p => p.Value is not null)
            .Select(p => p.Name + "=" + Uri.EscapeDataString(p.Value!).Replace("%2C", ",", StringComparison.Ordinal)).ToArray();
        return present.Length == 0 ? "" : "?" + string.Join('&', present);
    }
}

/// <summary>Any refusal (4xx, 503 of the POST routes): what was wrong; null when the body named nothing (405).</summary>
internal sealed record AdminError(string? Error);

/// <summary>GET /health/ready, 200 when ready, else 503.</summary>
internal sealed record ReadyResponse(bool Ready, string MemberStatus, IReadOnlyList<StalledPartition> StalledPartitions);

/// <summary>A partition that keeps the node from being ready, and why.</summary>
internal sealed record StalledPartition(string EntityId, string? LastError);

/// <summary>
/// One partition of GET /status/partitions: the entity's <see cref="PartitionStatus"/>, and for outbox partitions
/// <see cref="Backlog"/> (rows waiting) and <see cref="Position"/> (id of the next row; null when none waits), read
/// from the database at most <see cref="OutboxBacklog.Interval"/> ago. Without that read (kafka, or the read failed)
/// there is no <c>backlog</c> field.
/// </summary>
internal sealed record PartitionInfo(
    string EntityId,
    string Consumer,
    PartitionSource Source,
    string Partition,
    string Node,
    PartitionState State,
    long Delivered,
    long DeadLettered,
    long Errors,
    string? LastError,
    DateTimeOffset? LastErrorAt,
    DateTimeOffset? LastActivityAt,
    long? Lag,
    long? Position,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? Backlog = null)
{
    public static PartitionInfo Of(PartitionStatus s) => new(
        s.EntityId, s.Consumer, s.Source, s.Partition, s.Node, s.State, s.Delivered, s.DeadLettered, s.Errors,
        s.LastError, s.LastErrorAt, s.LastActivityAt, s.Lag, s.Position);
}

/// <summary>GET /status/cluster. The oldest member that is Up hosts the cluster singletons.</summary>
internal sealed record ClusterInfo(
    string Self, string? Leader, string? Oldest, IReadOnlyList<ClusterMember> Members, IReadOnlyList<string> Unreachable);

/// <summary>A member: its status (Akka's name: Up, Leaving, ...) and roles; <see cref="Pod"/> from its pod role, when it runs in
/// Kubernetes.</summary>
internal sealed record ClusterMember(string Address, string Status, IReadOnlyList<string> Roles, string? Pod);

/// <summary>GET /status/shards: Akka's GetClusterShardingStats per node (empty when no region answered in time).</summary>
internal sealed record ShardsInfo(IReadOnlyList<ShardNode> Nodes);

internal sealed record ShardNode(
    string Node, int Shards, int Partitions, IReadOnlyList<string> ShardIds, IReadOnlyList<string> FailedShards);

/// <summary>GET /status/paused: the paused set as the node that answers sees it.</summary>
internal sealed record PausedSet(IReadOnlyList<string> Paused);

/// <summary>POST /cluster/leave|down, 202: the member it was asked of.</summary>
internal sealed record MemberActionResult(string Action, string Address, bool Accepted);

/// <summary>POST /log/level, 200.</summary>
internal sealed record LogLevelResult(string Level, string Previous);

/// <summary>POST /partitions/pause|resume, 200: in force on <see cref="Node"/> (null: the id is not configured, nothing to
/// confirm).</summary>
internal sealed record PauseInForce(string Action, string Id, bool Accepted, bool InForce, string? Node);

/// <summary>
/// POST /partitions/pause|resume, 202 (recorded by a majority, not confirmed in time) or 503 (recorded on this node
/// only): why it is not in force yet.
/// </summary>
internal sealed record PauseNotInForce(string Action, string Id, bool Accepted, bool InForce, string Error);

/// <summary>GET /dead-letters: per consumer, the total and the oldest items.</summary>
internal sealed record DeadLettersInfo(IReadOnlyList<DeadLetterSet> Consumers);

/// <summary>
/// One consumer's dead letters; <see cref="Source"/> tells which items follow (<see cref="DeadLetterSetConverter"/>).
/// <see cref="Table"/>: the dead-letter table, or the dead-letter topics joined by ','.
/// </summary>
internal abstract record DeadLetterSet(string Consumer, PartitionSource Source, string Table, long Total);

internal sealed record OutboxDeadLetterSet(
    string Consumer, string Table, long Total, [property: JsonPropertyOrder(1)] IReadOnlyList<DeadLetterItem> Items)
    : DeadLetterSet(Consumer, PartitionSource.Postgresql, Table, Total);

internal sealed record KafkaDeadLetterSet(
    string Consumer, string Table, long Total, [property: JsonPropertyOrder(1)] IReadOnlyList<KafkaDeadLetterItem> Items)
    : DeadLetterSet(Consumer, PartitionSource.Kafka, Table, Total);

/// <summary>Only the <c>source</c> of a <see cref="DeadLetterSet"/>: which set to read.</summary>
internal sealed record DeadLetterSetSource(PartitionSource? Source);

/// <summary>
/// Writes each <see cref="DeadLetterSet"/> as itself (consumer, source, table, total, items: the order the endpoint
/// has always written), and reads one as the set its <c>source</c> names, wherever that field is in the object.
/// </summary>
internal sealed class DeadLetterSetConverter : JsonConverter<DeadLetterSet>
{
    public override DeadLetterSet? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        // A copy of the reader reads ahead: a converter is handed its whole value, so the object can be read twice.
        var ahead = reader;
        return JsonSerializer.Deserialize(ref ahead, Info<DeadLetterSetSource>(options))?.Source switch
        {
            PartitionSource.Postgresql => JsonSerializer.Deserialize(ref reader, Info<OutboxDeadLetterSet>(options)),
            PartitionSource.Kafka => JsonSerializer.Deserialize(ref reader, Info<KafkaDeadLetterSet>(options)),
            _ => throw new JsonException("a dead-letter set without its source"),
        };
    }

    public override void Write(Utf8JsonWriter writer, DeadLetterSet value, JsonSerializerOptions options)
    {
        switch (value)
        {
            case OutboxDeadLetterSet outbox:
                JsonSerializer.Serialize(writer, outbox, Info<OutboxDeadLetterSet>(options));
                break;
            case KafkaDeadLetterSet kafka:
                JsonSerializer.Serialize(writer, kafka, Info<KafkaDeadLetterSet>(options));
                break;
            default:
                throw new NotSupportedException(value.GetType().Name);
        }
    }

    private static JsonTypeInfo<T> Info<T>(JsonSerializerOptions options) => (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));
}

/// <summary>
/// POST /dead-letters/replay, 200: what one request moved, and <see cref="More"/> when an outbox <c>all</c> stopped at
/// its batch limit (the CLI asks again). The fields of the other source are left out: outbox consumers answer
/// <see cref="DeadLetterIds"/> and <see cref="NewIdsByPartition"/>; kafka consumers <see cref="SkippedOtherConsumers"/>,
/// <see cref="Committed"/> and <see cref="ReplayGroup"/>.
/// </summary>
internal sealed record ReplayResponse(
    string Consumer,
    int Replayed,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<long>? DeadLetterIds,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? SkippedOtherConsumers,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Committed,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ReplayGroup,
    IReadOnlyList<long> NotFound,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyDictionary<int, long[]>? NewIdsByPartition,
    bool More);

/// <summary>Enums as snake_case strings ("idle", "postgresql"), as the endpoint has always written them.</summary>
internal sealed class SnakeCaseEnumConverter<TEnum>() : JsonStringEnumConverter<TEnum>(JsonNamingPolicy.SnakeCaseLower)
    where TEnum : struct, Enum;

/// <summary>
/// The JSON of the admin endpoint: web defaults, snake_case names, enums as snake_case strings, indented (the status
/// routes and the CLI's <c>--json</c>). <see cref="Compact"/> writes the answers of the actions and the errors.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    Converters = [typeof(SnakeCaseEnumConverter<PartitionState>), typeof(SnakeCaseEnumConverter<PartitionSource>),
        typeof(DeadLetterSetConverter)])]
[JsonSerializable(typeof(AdminError))]
[JsonSerializable(typeof(ReadyResponse))]
[JsonSerializable(typeof(IReadOnlyList<PartitionInfo>), TypeInfoPropertyName = "Partitions")]
[JsonSerializable(typeof(ClusterInfo))]
[JsonSerializable(typeof(ShardsInfo))]
[JsonSerializable(typeof(PausedSet))]
[JsonSerializable(typeof(MemberActionResult))]
[JsonSerializable(typeof(LogLevelResult))]
[JsonSerializable(typeof(PauseInForce))]
[JsonSerializable(typeof(PauseNotInForce))]
[JsonSerializable(typeof(DeadLettersInfo))]
[JsonSerializable(typeof(OutboxDeadLetterSet))]
[JsonSerializable(typeof(KafkaDeadLetterSet))]
[JsonSerializable(typeof(DeadLetterSetSource))]
[JsonSerializable(typeof(ReplayResponse))]
[JsonSerializable(typeof(IReadOnlyList<ReplayResponse>), TypeInfoPropertyName = "Replays")]
internal sealed partial class AdminJson : JsonSerializerContext
{
    private static AdminJson? _compact;

    /// <summary>
    /// Not indented, with ASP.NET's relaxed escaping (the defaults of <c>Results.Json</c>): the answers of the POST
    /// routes and every error. Made on first use: a static initializer here could run before the generated one of
    /// <c>Default</c> (the order of partial declarations is unspecified).
    /// </summary>
    public static AdminJson Compact => _compact ??= new(new JsonSerializerOptions(Default.Options)
    {
        WriteIndented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    /// <summary>An enum value as the endpoint writes it ("idle", "postgresql"), for the CLI's tables.</summary>
    public static string Name<TEnum>(TEnum value)
        where TEnum : struct, Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString() ?? "");
}
