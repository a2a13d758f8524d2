using System.Diagnostics;
using System.Globalization;
using Centrifugo.Actors.Delivery;
using Prometheus;

namespace Centrifugo.Actors.Diagnostics;

/// <summary>
/// Per-consumer delivery metrics, measured around <see cref="ICentrifugoClient.DeliverAsync"/> (one call = the
/// commands of one pass, sent as one or more POST /batch requests): duration, commands per call, Centrifugo API
/// errors by method and code in the shape of Centrifugo's own <c>centrifugo_api_command_errors_total</c>, and
/// failed calls (each one is retried with backoff).
/// </summary>
internal sealed class MeteredCentrifugoClient(ICentrifugoClient inner, string consumer) : ICentrifugoClient
{
    public static readonly Histogram Duration = Metrics.CreateHistogram(
        "centrifugo_actors_delivery_duration_seconds",
        "Time to deliver the commands of one pass to Centrifugo (one or more POST /batch requests).",
        new HistogramConfiguration
        {
            LabelNames = ["consumer_name"],
            Buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        });

    public static readonly Histogram BatchSize = Metrics.CreateHistogram(
        "centrifugo_actors_batch_size",
        "Commands per delivery pass.",
        new HistogramConfiguration { LabelNames = ["consumer_name"], Buckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] });

    public static readonly Counter ApiErrors = Metrics.CreateCounter(
        "centrifugo_actors_api_command_errors_total",
        "Commands Centrifugo did not accept, by method and error: a Centrifugo error code (100-113, e.g. 102), \"other\" " +
        "for any other code, \"http\" for an HTTP-level rejection, \"temporary\" or \"configuration\" for a failure that stopped the pass.",
        new CounterConfiguration { LabelNames = ["consumer_name", "method", "error"] });

    public static readonly Counter Retries = Metrics.CreateCounter(
        "centrifugo_actors_delivery_retries_total",
        "Delivery attempts that ended in a temporary or configuration failure and are retried (at once after progress, else with backoff).",
        new CounterConfiguration { LabelNames = ["consumer_name"] });

    public static void Initialise(string consumer)
    {
        Duration.WithLabels(consumer);
        BatchSize.WithLabels(consumer);
        Retries.WithLabels(consumer);
    }

    public async Task<DeliveryResult> DeliverAsync(
        IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken, Func<bool>? mayStart = null, DeliveryWindow? window = null)
    {
        var started = Stopwatch.GetTimestamp();
        var result = await inner.DeliverAsync(commands, cancellationToken, mayStart, window);
        Duration.WithLabels(consumer).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        BatchSize.WithLabels(consumer).Observe(commands.Count);
        for (var i = 0; i < result.Completed.Count && i < commands.Count; i++)
        {
            if (!result.Completed[i].Delivered)
            {
                ApiErrors.WithLabels(consumer, commands[i].Method, ErrorLabel(result.Completed[i].ErrorCode)).Inc();
            }
        }
        if (result.Failure is { } failure)
        {
            var method = result.Completed.Count < commands.Count ? commands[result.Completed.Count].Method : "";
            ApiErrors.WithLabels(consumer, method, failure.Kind == FailureKind.Configuration ? "configuration" : "temporary").Inc();
            Retries.WithLabels(consumer).Inc();
        }
        return result;
    }

    /// <summary>
    /// The <c>error</c> label of a rejected command: the code when it is one of Centrifugo's documented error codes
    /// (100–113), else "other" (a body can carry any integer: one series per value would grow without bound).
    /// </summary>
    internal static string ErrorLabel(int? code) => code switch
    {
        null => "http",
        >= 100 and <= 113 => code.Value.ToString(CultureInfo.InvariantCulture),
        _ => "other",
    };
}
