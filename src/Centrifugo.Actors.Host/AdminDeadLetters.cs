using System.Globalization;
using System.Text.Json;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Host;

/// <summary>
/// GET /dead-letters?consumer=&amp;limit= and POST /dead-letters/replay?consumer=&amp;ids=1,2|all=true (kafka: all
/// only). Both need the bearer token when one is set (dead letters carry application payloads); the replay is logged
/// like every admin action.
/// </summary>
internal static class AdminDeadLetters
{
    public static void Map(WebApplication app, JsonSerializerOptions json)
    {
        app.MapGet("/dead-letters", async (HttpContext ctx, IServiceProvider sp) =>
        {
            var runtime = sp.GetRequiredService<NodeRuntime>();
            if (AdminActions.Refuse(ctx, runtime, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Centrifugo.Actors.Admin"), "dead-letters list", AdminActions.Who(ctx)) is { } refused)
            {
                return refused;
            }
            var consumer = ctx.Request.Query["consumer"].ToString();
            var limit = int.TryParse(ctx.Request.Query["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out var l) && l > 0 ? Math.Min(l, 10_000) : 50;
            if (consumer.Length > 0 && Unsupported(runtime, consumer) is { } problem)
            {
                return problem;
            }
            var consumers = runtime.Outbox.Values.Where(o => consumer.Length == 0 || o.Consumer == consumer).OrderBy(o => o.Consumer, StringComparer.Ordinal);
            var result = new List<object>();
            foreach (var outbox in consumers)
            {
                var (total, items) = await OutboxDeadLetters.ListAsync(outbox.Store, limit, ctx.RequestAborted);
                result.Add(new { consumer = outbox.Consumer, source = "postgresql", table = outbox.Store.Sql.DeadLetterTable, total, items });
            }
            foreach (var kafka in runtime.Kafka.Values.Where(k => consumer.Length == 0 || k.Consumer == consumer).OrderBy(k => k.Consumer, StringComparer.Ordinal))
            {
                var (total, items) = await KafkaDeadLetters.ListAsync(kafka.Consumer, kafka.Options, limit, ctx.RequestAborted);
                result.Add(new { consumer = kafka.Consumer, source = "kafka", table = string.Join(",", KafkaDeadLetters.Topics(kafka.Options)), total, items });
            }
            return Results.Json(new { consumers = result }, json);
        });

        app.MapPost("/dead-letters/replay", async (HttpContext ctx, IServiceProvider sp) =>
        {
            var runtime = sp.GetRequiredService<NodeRuntime>();
            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Centrifugo.Actors.Admin");
            var who = AdminActions.Who(ctx);
            if (AdminActions.Refuse(ctx, runtime, logger, "dead-letters replay", who) is { } refused)
            {
                return refused;
            }
            var consumer = ctx.Request.Query["consumer"].ToString();
            if (consumer.Length == 0)
            {
                return Results.Json(new { error = "replay needs ?consumer=NAME" }, statusCode: 400);
            }
            if (Unsupported(runtime, consumer) is { } problem)
            {
                return problem;
            }
            var all = ctx.Request.Query["all"] == "true";
            var idsText = ctx.Request.Query["ids"].ToString();
            if (all == (idsText.Length > 0))
            {
                return Results.Json(new { error = "replay needs exactly one of ?ids=1,2,3 and ?all=true" }, statusCode: 400);
            }
            var ids = new List<long>();
            foreach (var part in idsText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!long.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var id))
                {
                    return Results.Json(new { error = $"\"{part}\" is not a dead-letter id" }, statusCode: 400);
                }
                ids.Add(id);
            }

            var target = all ? $"{consumer} all" : $"{consumer} ids {string.Join(',', ids)}";
            if (runtime.Kafka.TryGetValue(consumer, out var kafka))
            {
                if (!all)
                {
                    return Results.Json(new { error = "kafka dead letters are replayed in offset order from the replay group's committed offset: use --all" }, statusCode: 400);
                }
                AdminActions.LogAction(logger, "dead-letters replay", target, who, DateTimeOffset.UtcNow);
                var moved = await KafkaDeadLetters.ReplayAsync(consumer, kafka.Options, ctx.RequestAborted);
                return Results.Json(new
                {
                    consumer,
                    replayed = moved.Replayed,
                    skipped_other_consumers = moved.Skipped,
                    committed = moved.Committed,
                    replay_group = KafkaDeadLetters.ReplayGroup(consumer, kafka.Options),
                    not_found = Array.Empty<long>(),
                    more = false,
                }, json);
            }
            AdminActions.LogAction(logger, "dead-letters replay", target.Length > 200 ? target[..200] + "..." : target, who, DateTimeOffset.UtcNow);
            var result = await OutboxDeadLetters.ReplayAsync(runtime.Outbox[consumer].Store, all ? null : ids, ctx.RequestAborted);
            var missing = all ? [] : ids.Except(result.DeadLetterIds).Order().ToArray();
            return Results.Json(new
            {
                consumer,
                replayed = result.Replayed,
                dead_letter_ids = result.DeadLetterIds,
                not_found = missing,
                new_ids_by_partition = result.NewIdsByPartition.ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => p.Value),
                more = all && result.Replayed == OutboxDeadLetters.MaxReplayBatch,
            }, json);
        });
    }

    private static IResult? Unsupported(NodeRuntime runtime, string consumer) =>
        runtime.Outbox.ContainsKey(consumer) || runtime.Kafka.ContainsKey(consumer) ? null
            : Results.Json(new { error = $"no enabled consumer {consumer} in this node's configuration" }, statusCode: 404);
}
