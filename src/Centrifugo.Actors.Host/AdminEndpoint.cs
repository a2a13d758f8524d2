using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Cluster;
using Centrifugo.Actors.Diagnostics;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Partitions;
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
            ctx.Response.ContentType = "text/plain; version=0.0.4";
            await Metrics.DefaultRegistry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
        });
        // ?scope=cluster asks every partition entity in the cluster through the shard region; default: this node's.
        app.MapGet("/status/partitions", async (HttpContext ctx, PartitionStatusBoard board, IServiceProvider sp) =>
        {
            if (ctx.Request.Query["scope"] != "cluster")
            {
                return Results.Json(board.Snapshot(), Json);
            }
            var system = sp.GetRequiredService<ActorSystem>();
            var region = Akka.Hosting.ActorRegistry.For(system).Get<PartitionRegion>();
            var runtime = sp.GetRequiredService<NodeRuntime>();
            var statuses = await ClusterStatus.PartitionsAsync(region, runtime.Catalogs, TimeSpan.FromSeconds(3), ctx.RequestAborted);
            return Results.Json(statuses, Json);
        });
        AdminActions.Map(app, Json);
        app.MapGet("/status/cluster", (IServiceProvider sp) =>
        {
            var cluster = Cluster.Get(sp.GetRequiredService<ActorSystem>());
            var state = cluster.State;
            return Results.Json(new
            {
                self = cluster.SelfAddress.ToString(),
                leader = state.Leader?.ToString(),
                members = state.Members.Select(m => new { address = m.Address.ToString(), status = m.Status.ToString(), roles = m.Roles.ToArray() }).ToArray(),
                unreachable = state.Unreachable.Select(m => m.Address.ToString()).ToArray(),
            }, Json);
        });
    }
}
