using Confluent.Kafka;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// Processes the records of one partition read by a lease, in offset order: decode (command or publication data
/// mode), deliver through the ordered client, copy poison records to the dead-letter topic (awaiting the broker's
/// acknowledgement), then mark the last finished offset. One attempt at a time (<see cref="AttemptAsync"/>): the
/// partition's loop retries the unfinished records of a failed attempt as its <see cref="RetryPolicy"/> says, without
/// reading Kafka again; a configuration fault makes the entity report itself stalled. Thread-safe (its only state: each partition's
/// <see cref="DeliveryWindow"/>).
/// </summary>
internal sealed class KafkaRecordProcessor(
    string consumer,
    KafkaConsumerOptions options,
    ICentrifugoClient client,
    KafkaDeadLetterProducer deadLetters,
    ILogger logger)
{
    // One per topic-partition this node has run; a partition's batches run one at a time.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Topic, int Partition), DeliveryWindow> _windows = new();
    private readonly byte[] _methodHeader = System.Text.Encoding.UTF8.GetBytes(options.MethodHeader);

    /// <summary>
    /// One attempt at the unfinished records of <paramref name="records"/> from <paramref name="start"/> (read by
    /// <paramref name="lease"/>; <paramref name="decoded"/> by <see cref="DecodeOrReject"/>): deliver, copy poison records
    /// to the dead letters, mark the finished prefix. Returns where the unfinished records now start and the pass.
    /// Records finished by an earlier attempt (<paramref name="finished"/>) are never sent again. Throws
    /// <see cref="OperationCanceledException"/> when <paramref name="cancel"/> fires mid-attempt, and
    /// <see cref="KafkaPartitionLostException"/> when the group dropped this member's partition (nothing more is delivered).
    /// </summary>
    public async Task<(int Next, PassReport Report)> AttemptAsync(
        KafkaPartitionLease lease,
        KafkaRecordBatch records,
        ArraySegment<DecodeResult> decoded,
        ArraySegment<bool> finished,
        int start,
        CancellationToken cancel)
    {
        try
        {
            return await PassAsync(lease, records, decoded, finished, start, cancel);
        }
        catch (Exception e)
            when (e is not KafkaPartitionLostException && (e is not OperationCanceledException || !cancel.IsCancellationRequested))
        {
            // A bug or an input nothing foresaw: never let it end the partition's loop; nothing after the last mark is
            // marked, the pass is counted and retried. A lost partition is not one of those: it goes to the entity,
            // which stops delivering at once.
            var offset = records.Offset(start);
            KafkaLog.PassCrashed(logger, consumer, records.Topic, records.Partition, offset, e);
            return (start, new PassReport(records.Count - start, 0, 0,
                new DeliveryFailure(FailureKind.Temporary, $"internal error at offset {offset}: {e.GetType().Name}: {e.Message}")));
        }
    }

    /// <summary>
    /// <see cref="Decode"/> and the derived idempotency key through <see cref="DecodeStep"/>: a decoder bug or an input
    /// nothing foresaw never escapes to restart the partition forever; the record is dead-lettered with the exception
    /// as its reason, and logged at error level.
    /// </summary>
    internal DecodeResult DecodeOrReject(KafkaRecordBatch records, int index)
    {
        var decoded = DecodeStep.Run(
            (Processor: this, Records: records, Index: index),
            static m => m.Processor.Decode(m.Records, m.Index),
            options.DeriveIdempotencyKey ? static m => m.Processor.IdempotencyKey(m.Records, m.Index) : null,
            out var failure);
        if (failure is not null)
        {
            KafkaLog.DecodeCrashed(logger, consumer, records.Topic, records.Partition, records.Offset(index), failure);
        }

        return decoded;
    }

    private string IdempotencyKey(KafkaRecordBatch records, int index) =>
        IdempotencyKeys.ForKafka(consumer, records.Topic, records.Partition, records.Offset(index));

    /// <summary>
    /// Method header present and non-empty ⇒ the value is the request; absent ⇒ envelope; or publication data mode.
    /// Decodes from the record's bytes in the batch: a command's request points into its value, and the method header
    /// is found and matched in place.
    /// </summary>
    public DecodeResult Decode(KafkaRecordBatch records, int index)
    {
        var value = records.Value(index);
        if (options.PublicationDataMode.Enabled)
        {
            return PublicationDecoder.Decode(value, records.Headers(index), options.PublicationDataMode);
        }

        // First match wins, exact and case-sensitive (Centrifugo's getHeaderValue).
        return records.TryGetHeader(index, _methodHeader, out var method)
            ? CommandDecoder.DecodeWithMethodHeader(method.Span, value)
            : CommandDecoder.Decode(null, value);
    }

    private async Task<(int Next, PassReport Report)> PassAsync(
        KafkaPartitionLease lease,
        KafkaRecordBatch records,
        ArraySegment<DecodeResult> decoded,
        ArraySegment<bool> finished,
        int start,
        CancellationToken cancel)
    {
        // Records finished by an earlier pass (delivered, or copied to the dead letters) are never sent again: a
        // failed dead-letter copy must not make the commands after it be redelivered on every retry.
        var plan = PartitionPass.Plan(decoded, start, finished);

        // The fence against a stale owner: a lost partition delivers nothing more (and so marks nothing). A member
        // just out of a freeze is not lost yet: the client refuses to send (a temporary failure) until it is sure.
        if (lease.IsLost)
        {
            throw new KafkaPartitionLostException(lease.Topic, lease.Partition);
        }

        var window = _windows.GetOrAdd((lease.Topic, lease.Partition), static _ => new DeliveryWindow());
        // Asked again before every request of the batch (and as its body is written): a partition lost while
        // Centrifugo is slow, or a freeze of this process, stops the rest of the batch from going out.
        var result = plan.Commands.Count == 0
            ? new DeliveryResult([], null)
            : await client.DeliverAsync(plan.Commands, cancel, () => lease.MayDeliver, window);
        var settled = PartitionPass.Settle(decoded, plan, result, finished);
        var completedEnd = settled.CompletedEnd;
        foreach (var index in settled.Delivered)
        {
            finished[index] = true;
        }

        // Dead-letter copies of the completed prefix are produced together (the idempotent producer keeps their
        // order) and awaited in order: the prefix ends before the first copy the broker did not acknowledge.
        var delivered = settled.Delivered.Count;
        var copies = new List<(int Index, Task Produced)>(settled.DeadLetters.Count);
        foreach (var (index, reason) in settled.DeadLetters)
        {
            // A copy of the record (original key, value and headers): the producer may hold it past this batch.
            copies.Add((index, deadLetters.ProduceAsync(records.ToRecord(index), reason, cancel)));
        }

        var failure = settled.Failure;
        var deadLettered = 0;
        var copyFailed = false;
        foreach (var (index, produced) in copies)
        {
            try
            {
                await produced;
                finished[index] = true;
                deadLettered++;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancel.IsCancellationRequested)
            {
                var offset = records.Offset(index);
                if (!copyFailed)
                {
                    copyFailed = true;
                    // A copy that can never be written (too large, topic missing or not authorised, invalid record
                    // for a compacted topic) is a configuration fault: stall loudly (error, state stalled,
                    // readiness red) instead of retrying quietly forever. Others are retried with backoff.
                    var permanent = IsPermanent(ex);
                    failure = new DeliveryFailure(permanent ? FailureKind.Configuration : FailureKind.Temporary,
                        $"dead-letter copy of offset {offset} failed: {ex.Message}");
                    if (permanent)
                    {
                        KafkaLog.DeadLetterImpossible(logger, consumer, records.Topic, records.Partition, offset, ex.Message);
                    }
                    else
                    {
                        KafkaLog.DeadLetterFailed(logger, consumer, records.Topic, records.Partition, offset, ex.Message);
                    }
                }
            }
        }

        var done = start;
        while (done < records.Count && finished[done])
        {
            done++;
        }

        if (done > start)
        {
            lease.MarkProcessed(records.Offset(done - 1));
        }

        if (settled.Failure is { } deliveryFailure && !copyFailed)
        {
            var offset = records.Offset(completedEnd);
            if (deliveryFailure.Kind == FailureKind.Configuration)
            {
                KafkaLog.ConfigurationFault(logger, consumer, records.Topic, records.Partition, offset, deliveryFailure.Message);
            }
            else
            {
                KafkaLog.TemporaryFailure(logger, consumer, records.Topic, records.Partition, offset, deliveryFailure.Message);
            }
        }
        else if (settled.Failure is { Kind: FailureKind.Configuration } && failure is { Kind: FailureKind.Temporary })
        {
            failure = settled.Failure; // a Centrifugo configuration fault outranks a temporary copy failure
        }

        if (failure is null && done < records.Count)
        {
            failure = new DeliveryFailure(FailureKind.Temporary, "records left unfinished");
        }

        return (done, new PassReport(records.Count - start, delivered, deadLettered, failure));
    }

    /// <summary>Produce errors that retrying the same copy can never fix.</summary>
    internal static bool IsPermanent(Exception exception) =>
        exception is KafkaException { Error: var error } && error.Code is
            ErrorCode.MsgSizeTooLarge or ErrorCode.InvalidMsgSize or ErrorCode.RecordListTooLarge
            or ErrorCode.TopicAuthorizationFailed or ErrorCode.ClusterAuthorizationFailed
            or ErrorCode.Local_UnknownTopic or ErrorCode.UnknownTopicOrPart or ErrorCode.TopicException
            or ErrorCode.InvalidRecord or ErrorCode.InvalidMsg or ErrorCode.InvalidRequiredAcks;
}

/// <summary>The group dropped this member's partition: the entity must stop delivering (a new owner may be delivering).</summary>
internal sealed class KafkaPartitionLostException(string topic, int partition)
    : Exception($"{topic}/{partition} was lost by this group member; not delivering");
