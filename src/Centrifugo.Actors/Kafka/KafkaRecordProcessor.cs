using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>What every partition entity of one kafka consumer shares on a node (created and disposed by NodeRuntime).</summary>
internal sealed class KafkaConsumerRuntime(
    string consumer,
    KafkaConsumerOptions options,
    KafkaConsumerHub hub,
    KafkaDeadLetterProducer deadLetters,
    KafkaRecordProcessor processor,
    TimeSpan drainTimeout) : IAsyncDisposable
{
    public string Consumer { get; } = consumer;
    public KafkaConsumerOptions Options { get; } = options;
    public KafkaConsumerHub Hub { get; } = hub;
    public KafkaRecordProcessor Processor { get; } = processor;
    /// <summary>How long a stopping entity lets its in-flight batch finish before abandoning it (nothing more marked).</summary>
    public TimeSpan DrainTimeout { get; } = drainTimeout;

    /// <summary>Proxy to this consumer's group member singleton; set once the actor system runs (null before).</summary>
    public Akka.Actor.IActorRef? Member { get; set; }

    /// <summary>Timings of the group member and its grants (shared by the member and the entities).</summary>
    public KafkaGroupMemberSettings MemberSettings { get; init; } = new();

    public async ValueTask DisposeAsync()
    {
        // Leases first (final commits), then the dead-letter producer (flush).
        await Hub.DisposeAsync();
        deadLetters.Dispose();
    }
}

/// <summary>What one delivery attempt over the unfinished records of a batch did.</summary>
internal sealed record KafkaPassReport(int Read, int Delivered, int DeadLettered, DeliveryFailure? Failure)
{
    public bool Failed => Failure is not null;
}

/// <summary>
/// Processes the records of one partition read by a lease, in offset order: decode (command or publication data
/// mode), deliver through the ordered client, copy poison records to the dead-letter topic (awaiting the broker's
/// acknowledgement), then mark the last finished offset. A temporary failure retries the same unfinished records
/// with Centrifugo's capped exponential backoff, without reading Kafka again; a configuration fault does the same
/// but the entity reports itself stalled. Thread-safe (no state).
/// </summary>
internal sealed partial class KafkaRecordProcessor(
    string consumer,
    KafkaConsumerOptions options,
    ICentrifugoClient client,
    KafkaDeadLetterProducer deadLetters,
    ILogger logger)
{
    public string Consumer => consumer;

    /// <summary>
    /// Finishes every record of <paramref name="records"/> (all of the same lease), reporting each pass. Returns when
    /// all are finished, or early without marking the rest when <paramref name="stop"/> fires between attempts.
    /// Throws <see cref="OperationCanceledException"/> when <paramref name="cancel"/> fires mid-attempt.
    /// </summary>
    public async Task ProcessAsync(
        KafkaPartitionLease lease,
        IReadOnlyList<KafkaRecord> records,
        Action<KafkaPassReport> report,
        CancellationToken stop,
        CancellationToken cancel)
    {
        var decoded = new DecodeResult[records.Count];
        for (var i = 0; i < records.Count; i++)
        {
            decoded[i] = Decode(records[i]);
        }

        var start = 0;
        var retries = 0;
        while (start < records.Count)
        {
            var (next, pass) = await PassAsync(lease, records, decoded, start, cancel);
            report(pass);
            if (pass.Failure is null)
            {
                return;
            }

            retries = next > start ? 1 : retries + 1;
            start = next;
            try
            {
                await Task.Delay(Backoff.Next(retries), stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Method header present and non-empty ⇒ the value is the request; absent ⇒ envelope; or publication data mode.</summary>
    public DecodeResult Decode(KafkaRecord record)
    {
        var value = record.Value ?? [];
        if (options.PublicationDataMode.Enabled)
        {
            return PublicationDecoder.Decode(value, record.Headers, options.PublicationDataMode);
        }

        string? method = null;
        foreach (var (key, bytes) in record.Headers)
        {
            // First match wins, exact and case-sensitive (Centrifugo's getHeaderValue).
            if (string.Equals(key, options.MethodHeader, StringComparison.Ordinal))
            {
                method = System.Text.Encoding.UTF8.GetString(bytes);
                break;
            }
        }

        return CommandDecoder.Decode(method, value);
    }

    private async Task<(int Next, KafkaPassReport Report)> PassAsync(
        KafkaPartitionLease lease,
        IReadOnlyList<KafkaRecord> records,
        DecodeResult[] decoded,
        int start,
        CancellationToken cancel)
    {
        var commands = new List<ApiCommand>(records.Count - start);
        var commandRecord = new List<int>(records.Count - start);
        for (var i = start; i < records.Count; i++)
        {
            if (decoded[i].Command is { } command)
            {
                commands.Add(command);
                commandRecord.Add(i);
            }
        }

        // The fence against a stale owner: no delivery (and so no mark) without a valid grant from the group member.
        if (!lease.MayDeliver)
        {
            throw new KafkaGrantLapsedException(lease.Topic, lease.Partition);
        }

        var result = commands.Count == 0 ? new DeliveryResult([], null) : await client.DeliverAsync(commands, cancel);
        var completedEnd = result.Failure is null || result.Completed.Count >= commandRecord.Count
            ? records.Count
            : commandRecord[result.Completed.Count];

        // Dead-letter copies of the completed prefix are produced together (the idempotent producer keeps their
        // order) and awaited in order: the prefix ends before the first copy the broker did not acknowledge.
        var delivered = new List<int>(completedEnd - start);
        var copies = new List<(int Index, Task Produced)>();
        var commandIndex = 0;
        for (var i = start; i < completedEnd; i++)
        {
            if (decoded[i].RejectReason is { } reason)
            {
                copies.Add((i, deadLetters.ProduceAsync(records[i], reason, cancel)));
                continue;
            }

            var outcome = result.Completed[commandIndex++];
            if (outcome.Delivered)
            {
                delivered.Add(i);
            }
            else
            {
                copies.Add((i, deadLetters.ProduceAsync(records[i], outcome.Reason ?? $"centrifugo error {outcome.ErrorCode}", cancel)));
            }
        }

        var done = completedEnd;
        var failure = result.Failure;
        var deadLettered = 0;
        foreach (var (index, produced) in copies)
        {
            try
            {
                await produced;
                if (index < done)
                {
                    deadLettered++;
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancel.IsCancellationRequested)
            {
                if (index < done)
                {
                    done = index;
                    failure = new DeliveryFailure(FailureKind.Temporary, "dead-letter produce failed: " + ex.Message);
                    var r = records[index];
                    LogDeadLetterFailed(logger, consumer, r.Topic, r.Partition, r.Offset, ex.Message);
                }
            }
        }

        if (done > start)
        {
            lease.MarkProcessed(records[done - 1].Offset);
        }

        if (result.Failure is { } deliveryFailure && done == completedEnd)
        {
            var r = records[done];
            if (deliveryFailure.Kind == FailureKind.Configuration)
            {
                LogConfigurationFault(logger, consumer, r.Topic, r.Partition, r.Offset, deliveryFailure.Message);
            }
            else
            {
                LogTemporaryFailure(logger, consumer, r.Topic, r.Partition, r.Offset, deliveryFailure.Message);
            }
        }

        var deliveredCount = delivered.Count(i => i < done);
        return (done, new KafkaPassReport(records.Count - start, deliveredCount, deadLettered, failure));
    }

    [LoggerMessage(4030, LogLevel.Warning,
        "Temporary delivery failure, retrying with backoff: consumer {Consumer}, {Topic}/{Partition}@{Offset}: {Reason}")]
    private static partial void LogTemporaryFailure(ILogger logger, string consumer, string topic, int partition, long offset, string reason);

    [LoggerMessage(4031, LogLevel.Error,
        "Partition stalled by a configuration fault (nothing marked, readiness red): consumer {Consumer}, {Topic}/{Partition}@{Offset}: {Reason}")]
    private static partial void LogConfigurationFault(ILogger logger, string consumer, string topic, int partition, long offset, string reason);

    [LoggerMessage(4032, LogLevel.Warning,
        "Dead-letter copy not acknowledged, retrying with backoff (offset not marked): consumer {Consumer}, {Topic}/{Partition}@{Offset}: {Reason}")]
    private static partial void LogDeadLetterFailed(ILogger logger, string consumer, string topic, int partition, long offset, string reason);
}

/// <summary>The lease's delivery grant expired or was revoked: the entity must stop (a new owner may be delivering).</summary>
internal sealed class KafkaGrantLapsedException(string topic, int partition)
    : Exception($"the delivery grant of {topic}/{partition} lapsed; not delivering");
