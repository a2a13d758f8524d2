using System.Diagnostics;
using System.Text.Json;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Confluent.Kafka;

namespace Centrifugo.Actors.Testing.Load;

/// <summary>
/// A producer writing publish commands <c>{"channel":"PREFIXpN","data":{"seq":S}}</c> to N partitions at a steady
/// rate per partition (seq 0, 1, 2, … per partition), until stopped or until <c>maxDuration</c>. Every tick writes
/// what the rate owes by then (catching up after a stall, at most <see cref="MaxPerTick"/> per partition), and
/// tells the <see cref="DeliveryRecorder"/> when each command became visible (commit / broker ack).
/// </summary>
internal abstract class SteadyLoad : IAsyncDisposable
{
    private const int MaxPerTick = 50;
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(40);
    private readonly CancellationTokenSource _stop = new();
    private readonly long[] _produced;
    private Task _loop = Task.CompletedTask;

    protected SteadyLoad(
        int partitions, double perPartitionPerSecond, string channelPrefix, DeliveryRecorder recorder, TimeSpan maxDuration)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(perPartitionPerSecond);
        Partitions = partitions;
        Rate = perPartitionPerSecond;
        ChannelPrefix = channelPrefix;
        Recorder = recorder;
        MaxDuration = maxDuration;
        _produced = new long[partitions];
    }

    public int Partitions { get; }
    public double Rate { get; }
    public string ChannelPrefix { get; }
    public TimeSpan MaxDuration { get; }
    protected DeliveryRecorder Recorder { get; }

    /// <summary>Failed writes (retried on the next tick).</summary>
    public long Errors { get; private set; }

    public string Stream(int partition) => $"{ChannelPrefix}p{partition}";

    public IEnumerable<string> Streams => Enumerable.Range(0, Partitions).Select(Stream);

    public long Produced => _produced.Sum();

    public static byte[] Payload(string channel, long seq) => JsonSerializer.SerializeToUtf8Bytes(new { channel, data = new { seq } });

    protected void Begin() => _loop = Task.Run(RunAsync);

    /// <summary>Stops writing and waits for the writes in progress.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
        await DisposeCoreAsync();
    }

    /// <summary>Writes <paramref name="batch"/> (partition, seq) in order; returns once all are visible to consumers.</summary>
    protected abstract Task WriteAsync(IReadOnlyList<(int Partition, long Seq)> batch, CancellationToken cancellationToken);

    protected virtual ValueTask DisposeCoreAsync() => ValueTask.CompletedTask;

    private async Task RunAsync()
    {
        var clock = Stopwatch.StartNew();
        using var timer = new PeriodicTimer(Tick);
        try
        {
            while (clock.Elapsed < MaxDuration && await timer.WaitForNextTickAsync(_stop.Token))
            {
                var owed = (long)(clock.Elapsed.TotalSeconds * Rate);
                var batch = new List<(int, long)>();
                for (var n = 0; n < MaxPerTick; n++)
                {
                    for (var p = 0; p < Partitions; p++)
                    {
                        if (_produced[p] + n < owed)
                        {
                            batch.Add((p, _produced[p] + n));
                        }
                    }
                }

                if (batch.Count == 0)
                {
                    continue;
                }

                try
                {
                    // Not cancelled by the stop: a write cancelled after its commit would leave committed commands that
                    // were never recorded as produced ("deliveries of commands never produced").
                    await WriteAsync(batch, CancellationToken.None);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Errors++;
                    continue;
                }

                var at = DeliveryRecorder.Now;
                foreach (var (p, seq) in batch.OrderBy(b => b.Item2))
                {
                    Recorder.Produced(Stream(p), seq, at);
                    _produced[p] = seq + 1;
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // stopped
        }
    }
}

/// <summary><see cref="SteadyLoad"/> into an outbox table: one COPY (one transaction) per tick.</summary>
internal sealed class OutboxLoad : SteadyLoad
{
    private readonly OutboxTestTable _table;

    private OutboxLoad(OutboxTestTable table, int partitions, double rate, string prefix, DeliveryRecorder recorder, TimeSpan maxDuration)
        : base(partitions, rate, prefix, recorder, maxDuration) => _table = table;

    public static OutboxLoad Start(OutboxTestTable table, int partitions, double perPartitionPerSecond, string channelPrefix,
        DeliveryRecorder recorder, TimeSpan maxDuration)
    {
        var load = new OutboxLoad(table, partitions, perPartitionPerSecond, channelPrefix, recorder, maxDuration);
        load.Begin();
        return load;
    }

    protected override Task WriteAsync(IReadOnlyList<(int Partition, long Seq)> batch, CancellationToken cancellationToken) =>
        _table.InsertAsync(batch.Select(b =>
            new OutboxInsert("publish", System.Text.Encoding.UTF8.GetString(Payload(Stream(b.Partition), b.Seq)), b.Partition)),
            cancellationToken);
}

/// <summary><see cref="SteadyLoad"/> into a Kafka topic (envelope mode, idempotent producer, partition = N).</summary>
internal sealed class KafkaLoad : SteadyLoad
{
    private readonly IProducer<byte[]?, byte[]?> _producer;
    private readonly string _topic;

    private KafkaLoad(
        string bootstrap, string topic, int partitions, double rate, string prefix, DeliveryRecorder recorder, TimeSpan maxDuration)
        : base(partitions, rate, prefix, recorder, maxDuration)
    {
        _topic = topic;
        _producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
            {
                BootstrapServers = bootstrap,
                EnableIdempotence = true,
                Acks = Acks.All,
                LingerMs = 5,
                AllowAutoCreateTopics = false,
            })
            .SetLogHandler((_, _) => { })
            .SetErrorHandler((_, _) => { })
            .Build();
    }

    public static KafkaLoad Start(string bootstrap, string topic, int partitions, double perPartitionPerSecond, string channelPrefix,
        DeliveryRecorder recorder, TimeSpan maxDuration)
    {
        var load = new KafkaLoad(bootstrap, topic, partitions, perPartitionPerSecond, channelPrefix, recorder, maxDuration);
        load.Begin();
        return load;
    }

    public static byte[] Envelope(string channel, long seq) =>
        JsonSerializer.SerializeToUtf8Bytes(new { method = "publish", payload = new { channel, data = new { seq } } });

    protected override async Task WriteAsync(IReadOnlyList<(int Partition, long Seq)> batch, CancellationToken cancellationToken)
    {
        // Idempotent producer: records of one partition land in the order produced, also across retries.
        await Task.WhenAll(batch.Select(b => _producer.ProduceAsync(
            new TopicPartition(_topic, b.Partition),
            new Message<byte[]?, byte[]?> { Value = Envelope(Stream(b.Partition), b.Seq) },
            CancellationToken.None)));
    }

    protected override ValueTask DisposeCoreAsync()
    {
        _producer.Dispose();
        return ValueTask.CompletedTask;
    }
}
