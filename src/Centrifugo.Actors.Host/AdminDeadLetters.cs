using System.Globalization;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Operations;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Host;

/// <summary>
/// GET /dead-letters?consumer=&amp;limit= and POST /dead-letters/replay?consumer=&amp;ids=1,2|all=true (kafka: all
/// only). Both are behind <see cref="AdminTokenFilter"/> (dead letters carry application payloads); the replay is
/// logged like every admin action.
/// </summary>
internal static class AdminDeadLetters
{
    internal static async Task<IResult> ListAsync(
        [AsParameters] DeadLettersRequest request, NodeRuntime runtime, CancellationToken cancellationToken)
    {
        var consumer = request.Consumer ?? "";
        var limit = request.LimitOrDefault();
        if (consumer.Length > 0 && Unsupported(runtime, consumer) is { } problem)
        {
            return problem;
        }
        var result = new List<DeadLetterSet>();
        foreach (var outbox in runtime.Outbox.Values.Where(o => consumer.Length == 0 || o.Consumer == consumer)
            .OrderBy(o => o.Consumer, StringComparer.Ordinal))
        {
            var (total, items) = await OutboxDeadLetters.ListAsync(outbox.Store, limit, cancellationToken);
            result.Add(new OutboxDeadLetterSet(outbox.Consumer, outbox.Store.Sql.DeadLetterTable, total, items));
        }
        foreach (var kafka in runtime.Kafka.Values.Where(k => consumer.Length == 0 || k.Consumer == consumer)
            .OrderBy(k => k.Consumer, StringComparer.Ordinal))
        {
            var (total, items) = await KafkaDeadLetters.ListAsync(kafka.Consumer, kafka.Options, limit, cancellationToken);
            result.Add(new KafkaDeadLetterSet(kafka.Consumer, string.Join(",", KafkaDeadLetters.Topics(kafka.Options)), total, items));
        }
        return Results.Json(new DeadLettersInfo(result), AdminJson.Default.DeadLettersInfo);
    }

    internal static async Task<IResult> ReplayAsync(
        [AsParameters] ReplayRequest request, HttpContext ctx, NodeRuntime runtime, ILoggerFactory loggers,
        CancellationToken cancellationToken)
    {
        var consumer = request.Consumer ?? "";
        if (consumer.Length == 0)
        {
            return AdminActions.Error(400, "replay needs ?consumer=NAME");
        }
        if (Unsupported(runtime, consumer) is { } problem)
        {
            return problem;
        }
        var all = request.IsAll;
        var idsText = request.Ids ?? "";
        if (all == (idsText.Length > 0))
        {
            return AdminActions.Error(400, "replay needs exactly one of ?ids=1,2,3 and ?all=true");
        }
        var ids = new List<long>();
        foreach (var part in idsText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!long.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var id))
            {
                return AdminActions.Error(400, $"\"{part}\" is not a dead-letter id");
            }
            ids.Add(id);
        }

        var logger = loggers.CreateLogger(AdminActions.LogCategory);
        var who = AdminActions.Who(ctx);
        var target = all ? $"{consumer} all" : $"{consumer} ids {string.Join(',', ids)}";
        if (runtime.Kafka.TryGetValue(consumer, out var kafka))
        {
            if (!all)
            {
                return AdminActions.Error(
                    400, "kafka dead letters are replayed in offset order from the replay group's committed offset: use --all");
            }
            AdminActions.LogAction(logger, "dead-letters replay", target, who, DateTimeOffset.UtcNow);
            var moved = await KafkaDeadLetters.ReplayAsync(consumer, kafka.Options, cancellationToken);
            return Results.Json(new ReplayResponse(consumer, moved.Replayed, DeadLetterIds: null, moved.Skipped, moved.Committed,
                KafkaDeadLetters.ReplayGroup(consumer, kafka.Options), NotFound: [], NewIdsByPartition: null, More: false),
                AdminJson.Default.ReplayResponse);
        }
        AdminActions.LogAction(
            logger, "dead-letters replay", target.Length > 200 ? target[..200] + "..." : target, who, DateTimeOffset.UtcNow);
        var result = await OutboxDeadLetters.ReplayAsync(runtime.Outbox[consumer].Store, all ? null : ids, cancellationToken);
        return Results.Json(new ReplayResponse(
            consumer, result.Replayed, result.DeadLetterIds, SkippedOtherConsumers: null, Committed: null, ReplayGroup: null,
            NotFound: all ? [] : ids.Except(result.DeadLetterIds).Order().ToArray(),
            result.NewIdsByPartition,
            More: all && result.Replayed == OutboxDeadLetters.MaxReplayBatch), AdminJson.Default.ReplayResponse);
    }

    private static IResult? Unsupported(NodeRuntime runtime, string consumer) =>
        runtime.Outbox.ContainsKey(consumer) || runtime.Kafka.ContainsKey(consumer) ? null
            : AdminActions.Error(404, $"no enabled consumer {consumer} in this node's configuration");
}
