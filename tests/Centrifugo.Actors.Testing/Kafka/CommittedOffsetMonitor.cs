using Confluent.Kafka;

namespace Centrifugo.Actors.Testing.Kafka;

/// <summary>A committed offset seen lower than one seen before.</summary>
internal sealed record OffsetRegression(int Partition, long From, long To, DateTimeOffset At);

/// <summary>
/// Polls a consumer group's committed offsets of one topic (OffsetFetch through a separate client with the same
/// group.id that never joins the group) every <c>interval</c>, and records every time an offset is lower than the
/// highest one seen before for that partition. Runs on its own thread until disposed.
/// </summary>
internal sealed class CommittedOffsetMonitor : IDisposable
{
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly TopicPartition[] _partitions;
    private readonly long[] _highest;
    private readonly List<OffsetRegression> _regressions = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private long _polls;
    private long _errors;

    public CommittedOffsetMonitor(string bootstrap, string group, string topic, int partitions, TimeSpan interval)
    {
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
            {
                BootstrapServers = bootstrap,
                GroupId = group,
                EnableAutoCommit = false,
                AllowAutoCreateTopics = false,
            })
            .SetLogHandler((_, _) => { })
            .SetErrorHandler((_, _) => { })
            .Build();
        _partitions = Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)).ToArray();
        _highest = Enumerable.Repeat(-1L, partitions).ToArray();
        _thread = new Thread(() => Run(interval)) { IsBackground = true, Name = "committed-offset-monitor" };
        _thread.Start();
    }

    public long Polls => Interlocked.Read(ref _polls);

    /// <summary>OffsetFetch calls that failed (coordinator moving, timeouts).</summary>
    public long Errors => Interlocked.Read(ref _errors);

    public IReadOnlyList<OffsetRegression> Regressions
    {
        get
        {
            lock (_gate)
            {
                return [.. _regressions];
            }
        }
    }

    /// <summary>Highest committed offset seen per partition (-1 = none yet).</summary>
    public IReadOnlyList<long> Highest
    {
        get
        {
            lock (_gate)
            {
                return [.. _highest];
            }
        }
    }

    private void Run(TimeSpan interval)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var committed = _consumer.Committed(_partitions, TimeSpan.FromSeconds(5));
                Interlocked.Increment(ref _polls);
                lock (_gate)
                {
                    foreach (var c in committed)
                    {
                        var offset = c.Offset.Value;
                        if (offset < 0)
                        {
                            continue;
                        }

                        var p = c.Partition.Value;
                        if (offset < _highest[p])
                        {
                            _regressions.Add(new OffsetRegression(p, _highest[p], offset, DateTimeOffset.UtcNow));
                        }

                        _highest[p] = Math.Max(_highest[p], offset);
                    }
                }
            }
            catch (KafkaException)
            {
                Interlocked.Increment(ref _errors);
            }

            _stop.Token.WaitHandle.WaitOne(interval);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join(TimeSpan.FromSeconds(10));
        _consumer.Dispose();
        _stop.Dispose();
    }
}
