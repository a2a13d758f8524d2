using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Centrifugo.Actors.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Host;

/// <summary>
/// The operator routes behind the CLI: GET /status/shards (Akka's GetClusterShardingStats: shards and partitions per
/// node), POST /cluster/leave[?address=], POST /cluster/down?address=, POST /partitions/pause?id= and
/// POST /partitions/resume?id= (GET /status/paused lists the paused set as this node sees it). Mutations are POST only, need the bearer
/// token when admin.token is set (required by start-up validation whenever the endpoint binds beyond loopback,
/// compared in constant time), and are logged at information level with who (remote address, the CLI's user
/// header), what and when.
/// </summary>
internal static partial class AdminActions
{
    public const string UserHeader = "X-Centrifugo-Actors-User";

    /// <summary>How long pause/resume wait for the owning entity to confirm.</summary>
    private static readonly TimeSpan ConfirmTimeout = TimeSpan.FromSeconds(10);

    public static void Map(WebApplication app, JsonSerializerOptions json)
    {
        app.MapGet("/status/shards", async (IServiceProvider sp, HttpContext ctx) =>
        {
            var system = sp.GetRequiredService<ActorSystem>();
            var region = Akka.Hosting.ActorRegistry.For(system).Get<PartitionRegion>();
            var timeout = TimeSpan.FromSeconds(3);
            var stats = await region.Ask<ClusterShardingStats>(new GetClusterShardingStats(timeout), timeout + TimeSpan.FromSeconds(2), ctx.RequestAborted);
            var nodes = stats.Regions
                .OrderBy(r => r.Key.ToString(), StringComparer.Ordinal)
                .Select(r => new
                {
                    node = r.Key.ToString(),
                    shards = r.Value.Stats.Count,
                    partitions = r.Value.Stats.Values.Sum(),
                    shard_ids = r.Value.Stats.Keys.Order(StringComparer.Ordinal).ToArray(),
                    failed_shards = r.Value.Failed.Order(StringComparer.Ordinal).ToArray(),
                })
                .ToArray();
            return Results.Json(new { nodes }, json);
        });

        app.MapPost("/cluster/leave", (HttpContext ctx, IServiceProvider sp) => Act(ctx, sp, "leave", required: false,
            (cluster, address) => cluster.Leave(address)));
        app.MapPost("/cluster/down", (HttpContext ctx, IServiceProvider sp) => Act(ctx, sp, "down", required: true,
            (cluster, address) => cluster.Down(address)));
        app.MapPost("/partitions/pause", (HttpContext ctx, IServiceProvider sp) => PauseAsync(ctx, sp, pause: true));
        app.MapPost("/partitions/resume", (HttpContext ctx, IServiceProvider sp) => PauseAsync(ctx, sp, pause: false));
        app.MapPost("/log/level", (HttpContext ctx, IServiceProvider sp) => SetLogLevel(ctx, sp));
        AdminDeadLetters.Map(app, json);
        app.MapGet("/status/paused", (IServiceProvider sp) =>
            Results.Json(new { paused = sp.GetRequiredService<NodeRuntime>().Paused.Snapshot().Order(StringComparer.Ordinal).ToArray() }, json));
    }

    /// <summary>
    /// POST /log/level?level=debug: this node's minimum log level (Centrifugo's names) until the next change or restart,
    /// for our own categories and Akka's. Token and audit as every action.
    /// </summary>
    private static IResult SetLogLevel(HttpContext ctx, IServiceProvider sp)
    {
        var runtime = sp.GetRequiredService<NodeRuntime>();
        var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Centrifugo.Actors.Admin");
        var who = Who(ctx);
        if (Refuse(ctx, runtime, logger, "log level", who) is { } refused)
        {
            return refused;
        }
        var requested = ctx.Request.Query["level"].ToString();
        if (Configuration.LogConfig.ParseLevel(requested) is not { } level)
        {
            return Results.Json(new { error = Configuration.LogConfig.LevelError(requested) }, statusCode: 400);
        }
        var levelSwitch = sp.GetRequiredService<LogLevelSwitch>();
        var previous = levelSwitch.Level;
        // Logged before a change that may silence it, and after one that may be the first to show it.
        LogAction(logger, "log level " + requested.ToLowerInvariant(), Cluster.Get(sp.GetRequiredService<ActorSystem>()).SelfAddress.ToString(), who, DateTimeOffset.UtcNow);
        levelSwitch.Level = level;
        sp.GetRequiredService<ActorSystem>().EventStream.SetLogLevel(AkkaLogBridge.AkkaLevel(level));
        return Results.Json(new { level = Configuration.LogConfig.LevelName(level), previous = Configuration.LogConfig.LevelName(previous) }, statusCode: 200);
    }

    /// <summary>
    /// POST /partitions/pause?id= and /partitions/resume?id=: adds/removes the id in the cluster-wide paused set
    /// (Distributed Data, WriteMajority), then waits for the owning entity to confirm it is in force. 200 when it is,
    /// 202 when recorded by a majority but not confirmed in time, 503 when only this node applied it so far.
    /// </summary>
    private static async Task<IResult> PauseAsync(HttpContext ctx, IServiceProvider sp, bool pause)
    {
        var action = pause ? "pause" : "resume";
        var runtime = sp.GetRequiredService<NodeRuntime>();
        var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Centrifugo.Actors.Admin");
        var who = Who(ctx);
        if (Refuse(ctx, runtime, logger, action, who) is { } refused)
        {
            return refused;
        }

        var id = ctx.Request.Query["id"].ToString();
        if (id.Length == 0)
        {
            return Results.Json(new { error = $"{action} needs ?id=<partition id>" }, statusCode: 400);
        }
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var catalog in runtime.Catalogs)
        {
            known.UnionWith(await catalog.EntityIdsAsync(ctx.RequestAborted));
        }
        // A resume of an id no longer configured is allowed (it clears a stale entry).
        if (pause && !known.Contains(id))
        {
            return Results.Json(new { error = $"no partition {id} in this node's configuration (see `partitions list`)" }, statusCode: 404);
        }

        LogAction(logger, action, id, who, DateTimeOffset.UtcNow);
        var system = sp.GetRequiredService<ActorSystem>();
        var problem = await Centrifugo.Actors.Partitions.PausedPartitions.UpdateAsync(system, id, pause, ctx.RequestAborted);
        if (problem is not null)
        {
            return Results.Json(new { action, id, accepted = true, in_force = false, error = problem }, statusCode: 503);
        }
        if (!known.Contains(id))
        {
            return Results.Json(new { action, id, accepted = true, in_force = true, node = (string?)null }, statusCode: 200);
        }
        // Recorded cluster-wide; now the owning entity confirms: its batch in flight finished and nothing new starts
        // (pause), or it may start batches again (resume).
        var region = Akka.Hosting.ActorRegistry.For(system).Get<PartitionRegion>();
        try
        {
            var confirmation = await region.Ask<Centrifugo.Actors.Partitions.PauseConfirmation>(
                new Centrifugo.Actors.Partitions.ConfirmPause(id, pause), ConfirmTimeout, ctx.RequestAborted);
            if (confirmation.InForce)
            {
                return Results.Json(new { action, id, accepted = true, in_force = true, node = confirmation.Node }, statusCode: 200);
            }
        }
        catch (AskTimeoutException)
        {
        }
        return Results.Json(new
        {
            action, id, accepted = true, in_force = false,
            error = $"recorded cluster-wide but its entity did not confirm within {ConfirmTimeout.TotalSeconds:0} s "
                + (pause ? "(a batch may still be in flight)" : "(it may be starting or moving)") + "; check `partitions show " + id + "`",
        }, statusCode: 202);
    }

    /// <summary>
    /// 401 (logged with who asked, event 1202) unless the request carries the admin token when one is needed; 403 when
    /// no token is set and the request may come from a browser; null when allowed.
    /// </summary>
    internal static IResult? Refuse(HttpContext ctx, NodeRuntime runtime, ILogger logger, string action, string who)
    {
        if (!Authorized(ctx, runtime.Options.Admin.Token))
        {
            LogRefused(logger, action, who, "no valid bearer token");
            return Results.Json(new { error = "a valid bearer token is required (admin.token / CENTRIFUGO_ACTORS_ADMIN_TOKEN)" }, statusCode: 401);
        }
        if (runtime.Options.Admin.Token.Length == 0 && !FromLocalClient(ctx.Request))
        {
            LogRefused(logger, action, who, "without a token only a local client may act: a loopback Host and the " + UserHeader + " header");
            return Results.Json(new { error = $"without admin.token, actions need a loopback Host and the {UserHeader} header (the CLI sends both)" }, statusCode: 403);
        }
        return null;
    }

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

    private static IResult Act(HttpContext ctx, IServiceProvider sp, string action, bool required, Action<Cluster, Address> apply)
    {
        var runtime = sp.GetRequiredService<NodeRuntime>();
        var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Centrifugo.Actors.Admin");
        var who = Who(ctx);
        if (Refuse(ctx, runtime, logger, action, who) is { } refused)
        {
            return refused;
        }

        var cluster = Cluster.Get(sp.GetRequiredService<ActorSystem>());
        var text = ctx.Request.Query["address"].ToString();
        if (text.Length == 0 && required)
        {
            return Results.Json(new { error = $"{action} needs ?address=akka.tcp://system@host:port" }, statusCode: 400);
        }

        Address address;
        try
        {
            address = text.Length == 0 ? cluster.SelfAddress : Address.Parse(text);
        }
        catch (Exception ex) when (ex is UriFormatException or ArgumentException or FormatException)
        {
            return Results.Json(new { error = $"\"{text}\" is not an Akka address (akka.tcp://system@host:port)" }, statusCode: 400);
        }

        if (!cluster.State.Members.Any(m => m.Address == address) && !cluster.State.Unreachable.Any(m => m.Address == address))
        {
            return Results.Json(new { error = $"{address} is not a member of this cluster" }, statusCode: 404);
        }

        LogAction(logger, action, address.ToString(), who, DateTimeOffset.UtcNow);
        apply(cluster, address);
        return Results.Json(new { action, address = address.ToString(), accepted = true }, statusCode: 202);
    }

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

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information,
        Message = "Admin action {Action} on {Address} by {Who} at {At:O}")]
    internal static partial void LogAction(ILogger logger, string action, string address, string who, DateTimeOffset at);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning,
        Message = "Admin action {Action} refused ({Reason}) from {Who}")]
    internal static partial void LogRefused(ILogger logger, string action, string who, string reason);
}
