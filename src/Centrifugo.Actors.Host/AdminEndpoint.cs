using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Cluster;
using Centrifugo.Actors.Diagnostics;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Operations;
using Centrifugo.Actors.Partitions;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Prometheus;

namespace Centrifugo.Actors.Host;

/// <summary>
/// Admin HTTP endpoint: /health/live, /health/ready (member Up and no partition stalled by a configuration
/// fault), /metrics (Prometheus), /status/partitions (this node's, or ?scope=cluster) and /status/cluster (JSON).
/// </summary>
internal static class AdminEndpoint
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public const string LivePath = "/health/live";
    public const string ReadyPath = "/health/ready";
    public const string MetricsPath = "/metrics";

    private static List<int> Hosted(PartitionStatusBoard board, string consumer) =>
        board.Snapshot().Where(s => s.Source == PartitionSource.Postgresql && s.Consumer == consumer)
            .Select(s => int.Parse(s.Partition, System.Globalization.CultureInfo.InvariantCulture)).ToList();

    /// <summary>
    /// The statuses as JSON, outbox partitions with <c>backlog</c> (rows waiting) and <c>position</c> (id of the next
    /// row; null when empty), read from the database at most <see cref="OutboxBacklog.Interval"/> ago. A failed read
    /// leaves both out.
    /// </summary>
    private static async Task<JsonArray> WithBacklogAsync(OutboxBacklogs backlogs, IReadOnlyList<PartitionStatus> statuses, CancellationToken cancellationToken)
    {
        var array = JsonSerializer.SerializeToNode(statuses, Json)!.AsArray();
        foreach (var outbox in backlogs.ByConsumer.Values)
        {
            if (!statuses.Any(s => s.Source == PartitionSource.Postgresql && s.Consumer == outbox.Consumer))
            {
                continue;
            }
            IReadOnlyDictionary<int, PartitionBacklog> backlog;
            try
            {
                backlog = await outbox.ReadAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is Npgsql.NpgsqlException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                continue;
            }
            for (var i = 0; i < statuses.Count; i++)
            {
                if (statuses[i].Source == PartitionSource.Postgresql && statuses[i].Consumer == outbox.Consumer
                    && int.TryParse(statuses[i].Partition, System.Globalization.CultureInfo.InvariantCulture, out var partition))
                {
                    var row = backlog.GetValueOrDefault(partition);
                    array[i]!["backlog"] = row?.Rows ?? 0;
                    array[i]!["position"] = row?.HeadId;
                }
            }
        }
        return array;
    }

    public static void Map(WebApplication app)
    {
        app.MapGet(LivePath, () => Results.Text("ok"));
        app.MapGet(ReadyPath, (IServiceProvider sp) =>
        {
            var system = sp.GetRequiredService<ActorSystem>();
            var board = sp.GetRequiredService<PartitionStatusBoard>();
            var cluster = Cluster.Get(system);
            var up = cluster.SelfMember.Status == MemberStatus.Up;
            var stalled = board.Stalled();
            var ready = up && stalled.Count == 0;
            var body = new
            {
                ready,
                member_status = cluster.SelfMember.Status.ToString(),
                stalled_partitions = stalled.Select(s => new { s.EntityId, s.LastError }).ToArray(),
            };
            return Results.Json(body, Json, statusCode: ready ? 200 : 503);
        });
        app.MapGet(MetricsPath, async (HttpContext ctx, IServiceProvider sp) =>
        {
            var runtime = sp.GetRequiredService<NodeRuntime>();
            NodeGauges.Update(Cluster.Get(sp.GetRequiredService<ActorSystem>()), runtime.Board,
                runtime.Options.Consumers.Where(c => c.Enabled).Select(c => c.Name));
            await OutboxBacklog.UpdateGaugeAsync(sp.GetRequiredService<OutboxBacklogs>().ByConsumer.Values
                .Select(b => (b, (IReadOnlyList<int>)Hosted(runtime.Board, b.Consumer))), ctx.RequestAborted);
            ctx.Response.ContentType = "text/plain; version=0.0.4";
            await Metrics.DefaultRegistry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
        });
        // ?scope=cluster asks every partition entity in the cluster through the shard region; default: this node's.
        app.MapGet("/status/partitions", async (HttpContext ctx, PartitionStatusBoard board, IServiceProvider sp) =>
        {
            var runtime = sp.GetRequiredService<NodeRuntime>();
            var backlogs = sp.GetRequiredService<OutboxBacklogs>();
            if (ctx.Request.Query["scope"] != "cluster")
            {
                return Results.Json(await WithBacklogAsync(backlogs, board.Snapshot(), ctx.RequestAborted), Json);
            }
            var system = sp.GetRequiredService<ActorSystem>();
            var region = Akka.Hosting.ActorRegistry.For(system).Get<PartitionRegion>();
            var statuses = await ClusterStatus.PartitionsAsync(system, region, runtime.Catalogs, TimeSpan.FromSeconds(3), ctx.RequestAborted);
            return Results.Json(await WithBacklogAsync(backlogs, statuses, ctx.RequestAborted), Json);
        });
        AdminActions.Map(app, Json);
        app.MapGet("/status/cluster", (IServiceProvider sp) =>
        {
            var cluster = Cluster.Get(sp.GetRequiredService<ActorSystem>());
            var state = cluster.State;
            // The oldest Up member hosts the cluster singletons (the shard coordinator, the partition keeper).
            var oldest = state.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.Leaving)
                .OrderBy(m => m, Member.AgeOrdering).FirstOrDefault();
            return Results.Json(new
            {
                self = cluster.SelfAddress.ToString(),
                leader = state.Leader?.ToString(),
                oldest = oldest?.Address.ToString(),
                members = state.Members.Select(m => new
                {
                    address = m.Address.ToString(), status = m.Status.ToString(), roles = m.Roles.ToArray(),
                    pod = m.Roles.FirstOrDefault(r => r.StartsWith(AkkaSetup.PodRolePrefix, StringComparison.Ordinal))?[AkkaSetup.PodRolePrefix.Length..],
                }).ToArray(),
                unreachable = state.Unreachable.Select(m => m.Address.ToString()).ToArray(),
            }, Json);
        });
    }
}
