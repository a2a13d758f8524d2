using Akka.Actor;
using Akka.Cluster;
using Centrifugo.Actors.Diagnostics;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Operations;
using Centrifugo.Actors.Partitions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Prometheus;

namespace Centrifugo.Actors.Host;

/// <summary>
/// Admin HTTP endpoint: /health/live, /health/ready (member Up and no partition stalled by a configuration
/// fault), /metrics (Prometheus), the status routes (JSON, no token) and the actions and dead letters behind the
/// admin token (<see cref="AdminTokenFilter"/>). The JSON of every route is <see cref="AdminJson"/>'s.
/// </summary>
internal static class AdminEndpoint
{
    public static void Map(WebApplication app)
    {
        app.MapGet(AdminPaths.Live, () => Results.Text("ok"));
        app.MapGet(AdminPaths.Ready, Ready);
        app.MapGet(AdminPaths.Metrics, MetricsAsync);
        app.MapGet(AdminPaths.Partitions, PartitionsAsync);
        app.MapGet(AdminPaths.Cluster, ClusterInfo);
        app.MapGet(AdminPaths.Shards, AdminActions.ShardsAsync);
        app.MapGet(AdminPaths.Paused, AdminActions.Paused);

        // Everything that acts, and the dead letters (application payloads): the token first, for the whole group.
        var guarded = app.MapGroup("").AddEndpointFilter<AdminTokenFilter>();
        guarded.MapPost(AdminPaths.Leave, AdminActions.Leave).WithMetadata(new AuditName("leave"));
        guarded.MapPost(AdminPaths.Down, AdminActions.Down).WithMetadata(new AuditName("down"));
        guarded.MapPost(AdminPaths.Pause, AdminActions.PauseAsync).WithMetadata(new AuditName("pause"));
        guarded.MapPost(AdminPaths.Resume, AdminActions.ResumeAsync).WithMetadata(new AuditName("resume"));
        guarded.MapPost(AdminPaths.LogLevel, AdminActions.SetLogLevel).WithMetadata(new AuditName("log level"));
        guarded.MapGet(AdminPaths.DeadLetters, AdminDeadLetters.ListAsync).WithMetadata(new AuditName("dead-letters list"));
        guarded.MapPost(AdminPaths.Replay, AdminDeadLetters.ReplayAsync).WithMetadata(new AuditName("dead-letters replay"));
    }

    private static IResult Ready(ActorSystem system, PartitionStatusBoard board)
    {
        var cluster = Cluster.Get(system);
        var stalled = board.Stalled();
        var ready = cluster.SelfMember.Status == MemberStatus.Up && stalled.Count == 0;
        return Results.Json(
            new ReadyResponse(
                ready, cluster.SelfMember.Status.ToString(), stalled.Select(s => new StalledPartition(s.EntityId, s.LastError)).ToArray()),
            AdminJson.Default.ReadyResponse, statusCode: ready ? 200 : 503);
    }

    private static async Task MetricsAsync(HttpContext ctx, NodeRuntime runtime, ActorSystem system, OutboxBacklogs backlogs)
    {
        NodeGauges.Update(Cluster.Get(system), runtime.Board, runtime.Options.Consumers.Where(c => c.Enabled).Select(c => c.Name));
        await OutboxBacklog.UpdateGaugeAsync(backlogs.ByConsumer.Values
            .Select(b => (b, (IReadOnlyList<int>)Hosted(runtime.Board, b.Consumer))), ctx.RequestAborted);
        ctx.Response.ContentType = "text/plain; version=0.0.4";
        await Metrics.DefaultRegistry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
    }

    private static List<int> Hosted(PartitionStatusBoard board, string consumer) =>
        board.Snapshot().Where(s => s.Source == PartitionSource.Postgresql && s.Consumer == consumer)
            .Select(s => int.Parse(s.Partition, System.Globalization.CultureInfo.InvariantCulture)).ToList();

    /// <summary>This node's partitions, or with scope=cluster every partition entity in the cluster through the shard region.</summary>
    private static async Task<IResult> PartitionsAsync(
        [AsParameters] PartitionsRequest request, NodeRuntime runtime, OutboxBacklogs backlogs, ActorSystem system,
        CancellationToken cancellationToken)
    {
        var statuses = request.IsClusterWide
            ? await ClusterStatus.PartitionsAsync(system, Akka.Hosting.ActorRegistry.For(system).Get<PartitionRegion>(), runtime.Catalogs,
                TimeSpan.FromSeconds(3), cancellationToken)
            : runtime.Board.Snapshot();
        return Results.Json(await WithBacklogAsync(backlogs, statuses, cancellationToken), AdminJson.Default.Partitions);
    }

    /// <summary>
    /// The statuses, outbox partitions with their backlog and position read from the database at most
    /// <see cref="OutboxBacklog.Interval"/> ago (<see cref="PartitionInfo"/>). A failed read leaves both out.
    /// </summary>
    private static async Task<IReadOnlyList<PartitionInfo>> WithBacklogAsync(
        OutboxBacklogs backlogs, IReadOnlyList<PartitionStatus> statuses, CancellationToken cancellationToken)
    {
        var infos = statuses.Select(PartitionInfo.Of).ToArray();
        foreach (var outbox in backlogs.ByConsumer.Values)
        {
            bool Ours(PartitionStatus s) => s.Source == PartitionSource.Postgresql && s.Consumer == outbox.Consumer;
            if (!statuses.Any(Ours))
            {
                continue;
            }
            IReadOnlyDictionary<int, PartitionBacklog> backlog;
            try
            {
                backlog = await outbox.ReadAsync(cancellationToken);
            }
            catch (Exception ex)
                when (ex is Npgsql.NpgsqlException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                continue;
            }
            for (var i = 0; i < statuses.Count; i++)
            {
                if (Ours(statuses[i])
                    && int.TryParse(statuses[i].Partition, System.Globalization.CultureInfo.InvariantCulture, out var partition))
                {
                    var row = backlog.GetValueOrDefault(partition);
                    infos[i] = infos[i] with { Backlog = row?.Rows ?? 0, Position = row?.HeadId };
                }
            }
        }
        return infos;
    }

    private static IResult ClusterInfo(ActorSystem system)
    {
        var cluster = Cluster.Get(system);
        var state = cluster.State;
        // The oldest Up member hosts the cluster singletons (the shard coordinator, the partition keeper).
        var oldest = state.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.Leaving)
            .OrderBy(m => m, Member.AgeOrdering).FirstOrDefault();
        return Results.Json(new ClusterInfo(
            cluster.SelfAddress.ToString(),
            state.Leader?.ToString(),
            oldest?.Address.ToString(),
            state.Members.Select(m => new ClusterMember(m.Address.ToString(), m.Status.ToString(), m.Roles.ToArray(),
                m.Roles.FirstOrDefault(r => r.StartsWith(AkkaSetup.PodRolePrefix, StringComparison.Ordinal))
                    ?[AkkaSetup.PodRolePrefix.Length..])).ToArray(),
            state.Unreachable.Select(m => m.Address.ToString()).ToArray()), AdminJson.Default.ClusterInfo);
    }
}
