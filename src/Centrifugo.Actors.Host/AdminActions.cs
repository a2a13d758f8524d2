using System.Security.Cryptography;
using System.Text;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Partitions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Host;

/// <summary>
/// The operator routes behind the CLI: GET /status/shards (Akka's GetClusterShardingStats: shards and partitions per
/// node), POST /cluster/leave[?address=], POST /cluster/down?address=, POST /partitions/pause?id= and
/// POST /partitions/resume?id= (GET /status/paused lists the paused set as this node sees it), POST /log/level?level=.
/// Mutations are POST only, behind <see cref="AdminTokenFilter"/>, and are logged at information level with who
/// (remote address, the CLI's user header), what and when.
/// </summary>
internal static partial class AdminActions
{
    public const string UserHeader = "X-Centrifugo-Actors-User";
    public const string LogCategory = "Centrifugo.Actors.Admin";

    /// <summary>How long pause/resume wait for the owning entity to confirm.</summary>
    private static readonly TimeSpan ConfirmTimeout = TimeSpan.FromSeconds(10);

    internal static async Task<IResult> ShardsAsync(ActorSystem system, CancellationToken cancellationToken)
    {
        var region = Akka.Hosting.ActorRegistry.For(system).Get<PartitionRegion>();
        var timeout = TimeSpan.FromSeconds(3);
        var stats = await region.Ask<ClusterShardingStats>(
            new GetClusterShardingStats(timeout), timeout + TimeSpan.FromSeconds(2), cancellationToken);
        var nodes = stats.Regions
            .OrderBy(r => r.Key.ToString(), StringComparer.Ordinal)
            .Select(r => new ShardNode(
                r.Key.ToString(),
                r.Value.Stats.Count,
                r.Value.Stats.Values.Sum(),
                r.Value.Stats.Keys.Order(StringComparer.Ordinal).ToArray(),
                r.Value.Failed.Order(StringComparer.Ordinal).ToArray()))
            .ToArray();
        return Results.Json(new ShardsInfo(nodes), AdminJson.Default.ShardsInfo);
    }

    internal static IResult Paused(NodeRuntime runtime) =>
        Results.Json(new PausedSet(runtime.Paused.Snapshot().Order(StringComparer.Ordinal).ToArray()), AdminJson.Default.PausedSet);

    internal static IResult Leave([AsParameters] MemberRequest request, HttpContext ctx, ActorSystem system, ILoggerFactory loggers) =>
        Act(request, ctx, system, loggers, "leave", required: false, (cluster, address) => cluster.Leave(address));

    internal static IResult Down([AsParameters] MemberRequest request, HttpContext ctx, ActorSystem system, ILoggerFactory loggers) =>
        Act(request, ctx, system, loggers, "down", required: true, (cluster, address) => cluster.Down(address));

    private static IResult Act(MemberRequest request, HttpContext ctx, ActorSystem system, ILoggerFactory loggers, string action,
        bool required, Action<Cluster, Address> apply)
    {
        var cluster = Cluster.Get(system);
        var text = request.Address ?? "";
        if (text.Length == 0 && required)
        {
            return Error(400, $"{action} needs ?address=akka.tcp://system@host:port");
        }

        Address address;
        try
        {
            address = text.Length == 0 ? cluster.SelfAddress : Address.Parse(text);
        }
        catch (Exception ex) when (ex is UriFormatException or ArgumentException or FormatException)
        {
            return Error(400, $"\"{text}\" is not an Akka address (akka.tcp://system@host:port)");
        }

        if (!cluster.State.Members.Any(m => m.Address == address) && !cluster.State.Unreachable.Any(m => m.Address == address))
        {
            return Error(404, $"{address} is not a member of this cluster");
        }

        LogAction(loggers.CreateLogger(LogCategory), action, address.ToString(), Who(ctx), DateTimeOffset.UtcNow);
        apply(cluster, address);
        return Results.Json(
            new MemberActionResult(action, address.ToString(), Accepted: true), AdminJson.Compact.MemberActionResult, statusCode: 202);
    }

    /// <summary>
    /// POST /log/level?level=debug: this node's minimum log level (Centrifugo's names) until the next change or restart,
    /// for our own categories and Akka's.
    /// </summary>
    internal static IResult SetLogLevel(
        [AsParameters] LogLevelRequest request, HttpContext ctx, ActorSystem system, LogLevelSwitch levelSwitch, ILoggerFactory loggers)
    {
        var requested = request.Level ?? "";
        if (Configuration.LogConfig.ParseLevel(requested) is not { } level)
        {
            return Error(400, Configuration.LogConfig.LevelError(requested));
        }
        var previous = levelSwitch.Level;
        // Logged before a change that may silence it, and after one that may be the first to show it.
        LogAction(loggers.CreateLogger(LogCategory), "log level " + requested.ToLowerInvariant(),
            Cluster.Get(system).SelfAddress.ToString(), Who(ctx), DateTimeOffset.UtcNow);
        levelSwitch.Level = level;
        system.EventStream.SetLogLevel(AkkaLogBridge.AkkaLevel(level));
        return Results.Json(new LogLevelResult(Configuration.LogConfig.LevelName(level), Configuration.LogConfig.LevelName(previous)),
            AdminJson.Compact.LogLevelResult);
    }

    internal static Task<IResult> PauseAsync(
        [AsParameters] PartitionRequest request, HttpContext ctx, NodeRuntime runtime, ActorSystem system, ILoggerFactory loggers,
        CancellationToken cancellationToken) =>
        ChangePauseAsync(request, ctx, runtime, system, loggers, pause: true, cancellationToken);

    internal static Task<IResult> ResumeAsync(
        [AsParameters] PartitionRequest request, HttpContext ctx, NodeRuntime runtime, ActorSystem system, ILoggerFactory loggers,
        CancellationToken cancellationToken) =>
        ChangePauseAsync(request, ctx, runtime, system, loggers, pause: false, cancellationToken);

    /// <summary>
    /// POST /partitions/pause?id= and /partitions/resume?id=: adds/removes the id in the cluster-wide paused set
    /// (Distributed Data, WriteMajority), then waits for the owning entity to confirm it is in force. 200 when it is,
    /// 202 when recorded by a majority but not confirmed in time, 503 when only this node applied it so far.
    /// </summary>
    private static async Task<IResult> ChangePauseAsync(
        PartitionRequest request, HttpContext ctx, NodeRuntime runtime, ActorSystem system, ILoggerFactory loggers, bool pause,
        CancellationToken cancellationToken)
    {
        var action = pause ? "pause" : "resume";
        var id = request.Id ?? "";
        if (id.Length == 0)
        {
            return Error(400, $"{action} needs ?id=<partition id>");
        }
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var catalog in runtime.Catalogs)
        {
            known.UnionWith(await catalog.EntityIdsAsync(cancellationToken));
        }
        // A resume of an id no longer configured is allowed (it clears a stale entry).
        if (pause && !known.Contains(id))
        {
            return Error(404, $"no partition {id} in this node's configuration (see `partitions list`)");
        }

        LogAction(loggers.CreateLogger(LogCategory), action, id, Who(ctx), DateTimeOffset.UtcNow);
        var problem = await Centrifugo.Actors.Partitions.PausedPartitions.UpdateAsync(system, id, pause, cancellationToken);
        if (problem is not null)
        {
            return NotInForce(503, problem);
        }
        if (!known.Contains(id))
        {
            return InForce(node: null);
        }
        // Recorded cluster-wide; now the owning entity confirms: its batch in flight finished and nothing new starts
        // (pause), or it may start batches again (resume).
        var region = Akka.Hosting.ActorRegistry.For(system).Get<PartitionRegion>();
        try
        {
            var confirmation = await region.Ask<PauseConfirmation>(new ConfirmPause(id, pause), ConfirmTimeout, cancellationToken);
            if (confirmation.InForce)
            {
                return InForce(confirmation.Node);
            }
        }
        catch (AskTimeoutException)
        {
        }
        return NotInForce(202, $"recorded cluster-wide but its entity did not confirm within {ConfirmTimeout.TotalSeconds:0} s "
            + (pause ? "(a batch may still be in flight)" : "(it may be starting or moving)") + "; check `partitions show " + id + "`");

        IResult InForce(string? node) =>
            Results.Json(new PauseInForce(action, id, Accepted: true, InForce: true, node), AdminJson.Compact.PauseInForce);

        IResult NotInForce(int status, string error) =>
            Results.Json(new PauseNotInForce(action, id, Accepted: true, InForce: false, error), AdminJson.Compact.PauseNotInForce,
                statusCode: status);
    }

    /// <summary>A refusal: <c>{"error": ...}</c> with <paramref name="status"/>.</summary>
    internal static IResult Error(int status, string error) =>
        Results.Json(new AdminError(error), AdminJson.Compact.AdminError, statusCode: status);

    /// <summary>
    /// Without a token any process that can reach loopback may act, and a browser on this host is one: a page can send
    /// a simple cross-origin POST, or rebind its own DNS name to 127.0.0.1 and read the answers. A custom header
    /// makes the browser ask a CORS preflight first, which this endpoint never grants; a rebound page still names its
    /// own host in Host. The CLI sends the header and addresses a loopback name.
    /// </summary>
    internal static bool FromLocalClient(HttpRequest request)
    {
        var host = request.Host.Host.Trim('[', ']');
        var loopback = string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
            || (System.Net.IPAddress.TryParse(host, out var ip) && System.Net.IPAddress.IsLoopback(ip));
        return loopback && request.Headers.ContainsKey(UserHeader);
    }

    internal static string Who(HttpContext ctx) =>
        $"{ctx.Connection.RemoteIpAddress}:{ctx.Connection.RemotePort} user={Sanitize(ctx.Request.Headers[UserHeader].ToString())}";

    internal static bool Authorized(HttpContext ctx, string token)
    {
        if (token.Length == 0)
        {
            return true; // only possible while bound to loopback (start-up validation)
        }

        var header = ctx.Request.Headers.Authorization.ToString();
        const string prefix = "Bearer ";
        if (!header.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(header[prefix.Length..])), SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    }

    private static string Sanitize(string value) =>
        value.Length == 0 ? "-" : new string(value.Take(64).Select(c => char.IsControl(c) ? '?' : c).ToArray());

    [LoggerMessage(EventId = HostEventId.AdminAction, Level = LogLevel.Information,
        Message = "Admin action {Action} on {Address} by {Who} at {At:O}")]
    internal static partial void LogAction(ILogger logger, string action, string address, string who, DateTimeOffset at);

    [LoggerMessage(EventId = HostEventId.AdminActionRefused, Level = LogLevel.Warning,
        Message = "Admin action {Action} refused ({Reason}) from {Who}")]
    internal static partial void LogRefused(ILogger logger, string action, string who, string reason);
}

/// <summary>The name a guarded route is logged under (events 1201 and 1202): "pause", "dead-letters replay", ...</summary>
internal sealed record AuditName(string Name);

/// <summary>
/// The admin token, on the group of every route that acts or shows dead letters: 401 (logged with who asked, event
/// 1202) unless the request carries the bearer token when admin.token is set (required by start-up validation whenever
/// the endpoint binds beyond loopback; compared in constant time, never logged); without a token, 403 unless the
/// request comes from a local client (<see cref="AdminActions.FromLocalClient"/>). It runs before the handler, so a
/// refused request is neither validated nor carried out.
/// </summary>
internal sealed class AdminTokenFilter(NodeRuntime runtime, ILoggerFactory loggers) : IEndpointFilter
{
    private readonly ILogger _logger = loggers.CreateLogger(AdminActions.LogCategory);

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var ctx = context.HttpContext;
        var token = runtime.Options.Admin.Token;
        var action = ctx.GetEndpoint()?.Metadata.GetMetadata<AuditName>()?.Name ?? ctx.Request.Path.ToString();
        if (!AdminActions.Authorized(ctx, token))
        {
            AdminActions.LogRefused(_logger, action, AdminActions.Who(ctx), "no valid bearer token");
            return AdminActions.Error(401, "a valid bearer token is required (admin.token / CENTRIFUGO_ACTORS_ADMIN_TOKEN)");
        }
        if (token.Length == 0 && !AdminActions.FromLocalClient(ctx.Request))
        {
            AdminActions.LogRefused(_logger, action, AdminActions.Who(ctx),
                "without a token only a local client may act: a loopback Host and the " + AdminActions.UserHeader + " header");
            return AdminActions.Error(
                403, $"without admin.token, actions need a loopback Host and the {AdminActions.UserHeader} header (the CLI sends both)");
        }
        return await next(context);
    }
}
