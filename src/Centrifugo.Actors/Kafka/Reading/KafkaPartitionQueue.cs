using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// One partition's own librdkafka fetch queue on a Confluent.Kafka consumer, read in batches by the partition's reader
/// instead of through the consumer's shared queue. Opening it (before the partition is assigned) detaches the queue
/// from the consumer queue (<c>rd_kafka_queue_forward(partition, NULL)</c>, which librdkafka's fetch start then
/// respects), so:
/// - nobody has to route records, and a reader that does not read only stops its own partition's fetching: librdkafka
///   stops fetching a partition whose queue holds <c>queued.min.messages</c> records or
///   <c>queued.max.messages.kbytes</c> (per partition for separate partition queues), without discarding its
///   prefetch the way a pause does;
/// - messages stay native until read (no copy on another thread).
/// librdkafka calls <see cref="OnQueueEvent"/> from one of its threads when a message lands on the empty queue; that
/// only releases a semaphore the reader waits on. Reads and disposal are serialised, so a read never touches a
/// destroyed queue. Thread-safe.
/// </summary>
internal sealed unsafe class KafkaPartitionQueue : IDisposable
{
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _wakeup = new(0, 1);
    private IntPtr _queue;
    private GCHandle _self;
    private volatile bool _disposed;

    private KafkaPartitionQueue(IntPtr queue)
    {
        _queue = queue;
        _self = GCHandle.Alloc(this);
        Librdkafka.rd_kafka_queue_forward(queue, IntPtr.Zero);
        Librdkafka.rd_kafka_queue_cb_event_enable(queue, &OnQueueEvent, GCHandle.ToIntPtr(_self));
        // Messages may have landed before the callback was enabled: the first wait must look.
        Wake();
    }

    /// <summary>
    /// The fetch queue of <paramref name="topic"/>/<paramref name="partition"/> on the consumer whose native handle is
    /// <paramref name="rk"/>, detached from the consumer queue. Open it before assigning the partition; throws when
    /// librdkafka has no such partition queue (not a consumer).
    /// </summary>
    public static KafkaPartitionQueue Open(IntPtr rk, string topic, int partition)
    {
        var queue = Librdkafka.rd_kafka_queue_get_partition(rk, topic, partition);
        return queue == IntPtr.Zero
            ? throw new InvalidOperationException($"librdkafka has no queue for {topic}/{partition} (not a consumer)")
            : new KafkaPartitionQueue(queue);
    }

    /// <summary>Operations (messages, errors, outdated messages not yet skipped) waiting in the queue; 0 once disposed.</summary>
    public long Length
    {
        get
        {
            lock (_lock)
            {
                return _queue == IntPtr.Zero ? 0 : (long)Librdkafka.rd_kafka_queue_length(_queue);
            }
        }
    }

    public bool IsDisposed => _disposed;

    /// <summary>
    /// Takes up to <paramref name="max"/> messages into <paramref name="buffer"/> without waiting; returns how many
    /// (0: empty or disposed). The caller owns them and must <c>rd_kafka_message_destroy</c> each (they stay valid after
    /// this queue is disposed, while the consumer lives).
    /// </summary>
    public int Read(Librdkafka.Message** buffer, int max)
    {
        lock (_lock)
        {
            if (_queue == IntPtr.Zero)
            {
                return 0;
            }

            var count = (int)Librdkafka.rd_kafka_consume_batch_queue(_queue, 0, buffer, (nuint)max);
            // Only invalid arguments make the call fail.
            return count >= 0 ? count : throw new InvalidOperationException("rd_kafka_consume_batch_queue failed on a partition queue");
        }
    }

    /// <summary>
    /// Completes when a message may have arrived since the last completed wait (or at once after disposal). Spurious
    /// completions are possible: read again, and wait again when the read was empty.
    /// </summary>
    public Task WaitAsync(CancellationToken cancellationToken) =>
        _disposed ? Task.CompletedTask : _wakeup.WaitAsync(cancellationToken);

    /// <summary>Stops the wake-ups, drops what is still queued (refetched by the next owner) and releases the queue.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_queue == IntPtr.Zero)
            {
                return;
            }

            _disposed = true;
            // Under the queue's lock in librdkafka, like the callback: once this returns no callback runs or starts.
            Librdkafka.rd_kafka_queue_cb_event_enable(_queue, null, IntPtr.Zero);
            _self.Free();
            var buffer = stackalloc Librdkafka.Message*[256];
            for (var i = 0; i < 10_000; i++)
            {
                var count = (int)Librdkafka.rd_kafka_consume_batch_queue(_queue, 0, buffer, 256);
                for (var j = 0; j < count; j++)
                {
                    Librdkafka.rd_kafka_message_destroy(buffer[j]);
                }
                if (count <= 0)
                {
                    break;
                }
            }

            Librdkafka.rd_kafka_queue_destroy(_queue);
            _queue = IntPtr.Zero;
        }

        Wake(); // a reader waiting now returns and finds the queue closed
    }

    /// <summary>Wakes a reader waiting in <see cref="WaitAsync"/> (it reads again and finds what changed).</summary>
    public void Interrupt() => Wake();

    private void Wake()
    {
        if (_wakeup.CurrentCount != 0)
        {
            return;
        }
        try
        {
            _wakeup.Release();
        }
        catch (SemaphoreFullException)
        {
            // raced with another wake-up: one is enough
        }
    }

    /// <summary>librdkafka thread, under the queue's lock: the queue stopped being empty.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnQueueEvent(IntPtr rk, IntPtr opaque)
    {
        try
        {
            if (GCHandle.FromIntPtr(opaque).Target is KafkaPartitionQueue queue)
            {
                queue.Wake();
            }
        }
        catch (Exception)
        {
            // Never let an exception cross into librdkafka; the reader's next read finds the records anyway.
        }
    }
}
