using System.Diagnostics;
using System.Globalization;
using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Hosting;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.StandIn;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using static Centrifugo.Actors.Benchmarks.Measure;

namespace Centrifugo.Actors.Benchmarks;

/// <summary>
/// `kafka`: per round a fresh topic on the kafka-mock child process is filled once (idempotent producer, lz4), then
/// read in alternating order by two references — (a1) librdkafka's batch consume over the consumer queue
/// (<c>rd_kafka_consume_batch_queue</c>, 10,000 per call, as confluent-kafka-python's <c>consume(10000)</c>) and (a2) a
/// bare Confluent.Kafka <c>Consume()</c> per message; both manual assignment from the beginning, no processing — and
/// (b) a whole node per variant (max_poll_records / max_batch_size) delivering into the stand-in, each with its own
/// group. Ratios are taken within a round against the batch reference, medians over rounds; CPU per 1,000 messages
/// is this process's CPU time (reader, or node + stand-in) over the timed section.
/// </summary>
internal static class KafkaEndToEndBench
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(5);

    private sealed record EndToEnd(double RateFromStart, double RateFromRunning, double Seconds, double StartupSeconds, CpuUse Cpu,
        CpuUse? CpuRunning, long Duplicates);

    private sealed record Reference(double Rate, CpuUse Cpu);

    private sealed record Round(
        int Index, double ProduceRate, Reference Batch, Reference PerMessage, IReadOnlyDictionary<KafkaVariant, EndToEnd> Runs)
    {
        public double BareRate => Batch.Rate;
    }

    /// <summary>CPU over a timed section: % of one core and milliseconds per 1,000 messages, this process and the mock.</summary>
    private sealed record CpuUse(
        double ProcessPercent, double MockPercent, double ProcessMsPer1000, double MockMsPer1000, double AllocatedBytesPerMessage)
    {
        public override string ToString() =>
            $"CPU: bench process {F(ProcessPercent)}% of a core = {F(ProcessMsPer1000, "0.00")} ms per 1,000 msgs, " +
            $"kafka-mock {F(MockPercent)}% = {F(MockMsPer1000, "0.00")} ms per 1,000; " +
            $"managed allocations {F(AllocatedBytesPerMessage)} B per msg (whole process)";
    }

    public static async Task RunAsync(BenchEnvironment env, BenchOptions options, CancellationToken cancellationToken)
    {
        var variants = options.KafkaVariants.ToArray();
        Console.WriteLine();
        Console.WriteLine(
            $"## kafka end-to-end: {options.Rows} messages, {options.Partitions} partitions, {options.Rounds} rounds, " +
            $"variants {string.Join(", ", variants.Select(v => v.ToString()))}; mock = kafka-mock child process (3 brokers)");

        await using var mock = await KafkaMockProcess.StartAsync(brokers: 3, rebalanceDelayMs: 0, cancellationToken: cancellationToken);
        var mockPid = FindChildPid("kafka-mock");
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { RecordCommands = false }, cancellationToken);

        var rounds = new List<Round>();
        for (var r = 0; r < options.Rounds; r++)
        {
            var topic = $"bench-{r + 1}-{Guid.NewGuid():N}";
            await mock.ControlAsync($"create {topic} {options.Partitions.ToString(CultureInfo.InvariantCulture)}", cancellationToken);
            try
            {
                var produce = Produce(mock.Bootstrap, topic, options.Rows, options.Partitions);
                Console.WriteLine($"round {r + 1}: produced {options.Rows} in {F(produce.Seconds, "0.0")} s = {F(produce.Rate)} msg/s; " +
                    $"load {LoadAverage()}");
                CheckNothingDropped(mock.Bootstrap, topic, options.Partitions, options.Rows);

                // Alternate which goes first so a drifting machine does not favour one of them.
                Reference batch = null!, perMessage = null!;
                var runs = new Dictionary<KafkaVariant, EndToEnd>();
                if (r % 2 == 0)
                {
                    batch = BareBatch(mock.Bootstrap, topic, options.Partitions, options.Rows, mockPid);
                    perMessage = Bare(mock.Bootstrap, topic, options.Partitions, options.Rows, mockPid);
                }

                foreach (var variant in r % 2 == 0 ? variants : variants.Reverse())
                {
                    runs[variant] = await EndToEndAsync(
                        mock.Bootstrap, standIn, topic, options.Partitions, options.Rows, variant, mockPid, cancellationToken);
                }

                if (r % 2 == 1)
                {
                    perMessage = Bare(mock.Bootstrap, topic, options.Partitions, options.Rows, mockPid);
                    batch = BareBatch(mock.Bootstrap, topic, options.Partitions, options.Rows, mockPid);
                }

                // Where the node's time goes: its read path alone (hub + leases, no delivery), and its delivery path
                // alone (decoded commands → CentrifugoClient → stand-in, no Kafka).
                await HubOnlyAsync(
                    mock.Bootstrap, topic, options.Partitions, options.Rows, mockPid, variant: variants[0], cancellationToken);
                await DeliveryOnlyAsync(standIn, options.Partitions, options.Rows, variants[0], cancellationToken);
                await StandInOnlyAsync(standIn, options.Partitions, options.Rows, variants[0], cancellationToken);

                rounds.Add(new Round(r + 1, produce.Rate, batch, perMessage, runs));
                var bare = batch.Rate;
                Console.WriteLine(
                    $"round {r + 1}: librdkafka batch {F(bare)} msg/s, Confluent per message {F(perMessage.Rate)} msg/s; " +
                    string.Join("; ", variants.Select(v =>
                        $"{v}: {F(runs[v].RateFromStart)} msg/s from node start ({F(runs[v].RateFromStart / bare, "0.00")}×), " +
                        $"{F(runs[v].RateFromRunning)} from partitions running ({F(runs[v].RateFromRunning / bare, "0.00")}×)")));
            }
            finally
            {
                await mock.SendAsync($"delete {topic}", CancellationToken.None);
            }
        }

        Console.WriteLine();
        Console.WriteLine("| round | reader | msg/s | CPU ms per 1,000 msgs (process) | kafka-mock CPU ms per 1,000 |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var round in rounds)
        {
            Console.WriteLine($"| {round.Index} | librdkafka batch | {F(round.Batch.Rate)} " +
                $"| {F(round.Batch.Cpu.ProcessMsPer1000, "0.00")} | {F(round.Batch.Cpu.MockMsPer1000, "0.00")} |");
            Console.WriteLine($"| {round.Index} | Confluent per message | {F(round.PerMessage.Rate)} " +
                $"| {F(round.PerMessage.Cpu.ProcessMsPer1000, "0.00")} | {F(round.PerMessage.Cpu.MockMsPer1000, "0.00")} |");
            foreach (var variant in variants)
            {
                Console.WriteLine(
                    $"| {round.Index} | node {variant} (node + stand-in) | {F(round.Runs[variant].RateFromRunning)} (running) | " +
                    $"{F(round.Runs[variant].Cpu.ProcessMsPer1000, "0.00")} from node start, " +
                    $"{F(round.Runs[variant].CpuRunning?.ProcessMsPer1000 ?? double.NaN, "0.00")} from partitions running | " +
                    $"{F(round.Runs[variant].Cpu.MockMsPer1000, "0.00")} |");
            }
        }

        Console.WriteLine();
        Console.WriteLine("| round | produce msg/s | librdkafka batch msg/s | variant | node msg/s from start | from partitions running " +
            "| start-up s | e2e / batch (from start) | e2e / batch (running) | e2e / Confluent per message (running) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var variant in variants)
        {
            foreach (var round in rounds)
            {
                var run = round.Runs[variant];
                Console.WriteLine(
                    $"| {round.Index} | {F(round.ProduceRate)} | {F(round.BareRate)} | {variant} | {F(run.RateFromStart)} | " +
                    $"{F(run.RateFromRunning)} | {F(run.StartupSeconds, "0.0")} | {F(run.RateFromStart / round.BareRate, "0.00")} | " +
                    $"{F(run.RateFromRunning / round.BareRate, "0.00")} | {F(run.RateFromRunning / round.PerMessage.Rate, "0.00")} |");
            }

            Console.WriteLine(
                $"| **median** | {F(Median([.. rounds.Select(x => x.ProduceRate)]))} | " +
                $"{F(Median([.. rounds.Select(x => x.BareRate)]))} | {variant} | " +
                $"{F(Median([.. rounds.Select(x => x.Runs[variant].RateFromStart)]))} | " +
                $"{F(Median([.. rounds.Select(x => x.Runs[variant].RateFromRunning)]))} | " +
                $"{F(Median([.. rounds.Select(x => x.Runs[variant].StartupSeconds)]), "0.0")} | " +
                $"**{F(Median([.. rounds.Select(x => x.Runs[variant].RateFromStart / x.BareRate)]), "0.00")}** | " +
                $"**{F(Median([.. rounds.Select(x => x.Runs[variant].RateFromRunning / x.BareRate)]), "0.00")}** (target ≥ 0.5) | " +
                $"{F(Median([.. rounds.Select(x => x.Runs[variant].RateFromRunning / x.PerMessage.Rate)]), "0.00")} |");
        }
    }

    /// <summary>Envelope-mode publish commands (≈ 60 bytes of JSON), round-robin over the partitions.</summary>
    private static byte[] Envelope(int i) =>
        Encoding.UTF8.GetBytes("{\"method\":\"publish\",\"payload\":{\"channel\":\"bench\",\"data\":{\"i\":" +
            i.ToString(CultureInfo.InvariantCulture) + "}}}");

    private static (double Rate, double Seconds) Produce(string bootstrap, string topic, int messages, int partitions)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = bootstrap,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            // 1M uncompressed envelopes over 8 partitions exceed the mock's 5 MiB per partition; lz4 keeps them whole.
            CompressionType = CompressionType.Lz4,
            QueueBufferingMaxMessages = messages + 1000,
            AllowAutoCreateTopics = false,
        };
        long failed = 0;
        string? firstError = null;
        using var producer = new ProducerBuilder<byte[]?, byte[]?>(config).SetLogHandler((_, _) => { }).Build();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < messages; i++)
        {
            producer.Produce(new TopicPartition(topic, i % partitions), new Message<byte[]?, byte[]?> { Value = Envelope(i) }, report =>
            {
                if (report.Error.IsError && Interlocked.Increment(ref failed) == 1)
                {
                    firstError = report.Error.Reason;
                }
            });
        }

        if (producer.Flush(TimeSpan.FromMinutes(2)) != 0)
        {
            throw new TimeoutException("the producer did not deliver every message within 2 minutes");
        }

        clock.Stop();
        if (failed > 0)
        {
            throw new InvalidOperationException($"{failed} messages were not acknowledged: {firstError}");
        }

        return (messages / clock.Elapsed.TotalSeconds, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The mock drops the oldest batches past 5 MiB / 100k batches per partition: the log must start at 0 and hold every
    /// message.</summary>
    private static void CheckNothingDropped(string bootstrap, string topic, int partitions, int messages)
    {
        using var consumer = BareConsumer(bootstrap, $"bench-watermarks-{Guid.NewGuid():N}");
        long total = 0;
        for (var p = 0; p < partitions; p++)
        {
            var w = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10));
            if (w.Low.Value != 0)
            {
                throw new InvalidOperationException($"the mock dropped the start of {topic}/{p}: low watermark {w.Low.Value}");
            }

            total += w.High.Value;
        }

        if (total != messages)
        {
            throw new InvalidOperationException($"{topic} holds {total} messages, expected {messages}");
        }
    }

    private static IConsumer<byte[]?, byte[]?> BareConsumer(string bootstrap, string group) =>
        new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
            {
                BootstrapServers = bootstrap,
                GroupId = group,
                EnableAutoCommit = false,
                EnableAutoOffsetStore = false,
                AutoOffsetReset = AutoOffsetReset.Earliest,
                // The node's defaults, so both fetch the same way (read_committed is librdkafka's default too).
                FetchWaitMaxMs = 500,
            })
            .SetLogHandler((_, _) => { })
            .Build();

    /// <summary>Assigns every partition from the beginning and consumes (no processing) until every message was seen; timed from the
    /// assignment.</summary>
    private static Reference Bare(string bootstrap, string topic, int partitions, int messages, int? mockPid)
    {
        using var consumer = BareConsumer(bootstrap, $"bench-bare-{Guid.NewGuid():N}");
        var cpu = new KafkaCpuMeter(mockPid);
        var clock = Stopwatch.StartNew();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var seen = 0;
        long bytes = 0;
        while (seen < messages)
        {
            if (clock.Elapsed > RunTimeout)
            {
                throw new TimeoutException($"the bare consumer saw {seen} of {messages} within {RunTimeout}");
            }

            if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is { } result)
            {
                seen++;
                bytes += result.Message.Value?.Length ?? 0;
            }
        }

        clock.Stop();
        var cpuUse = cpu.Stop(messages);
        Console.WriteLine("  Confluent per-message consumer: " +
            $"{F(clock.Elapsed.TotalSeconds, "0.00")} s ({F(bytes / 1e6, "0.0")} MB of values); {cpuUse}; load {LoadAverage()}");
        consumer.Close();
        return new Reference(messages / clock.Elapsed.TotalSeconds, cpuUse);
    }

    /// <summary>The node's read path alone: a <see cref="KafkaConsumerHub"/> with one lease per partition, each drained with
    /// ReadBatchAsync(max_poll_records) and marked, nothing delivered.</summary>
    private static async Task HubOnlyAsync(string bootstrap, string topic, int partitions, int messages, int? mockPid, KafkaVariant variant,
        CancellationToken cancellationToken)
    {
        var options = new KafkaConsumerOptions
        {
            Brokers = [bootstrap],
            Topics = [topic],
            ConsumerGroup = $"bench-hub-{Guid.NewGuid():N}",
            MaxPollRecords = variant.MaxPollRecords,
            PartitionQueueMaxSize = variant.QueueMaxSize,
            FetchMaxWait = TimeSpan.FromMilliseconds(variant.FetchMaxWaitMs),
        };
        await using var hub = new KafkaConsumerHub(
            "bench-hub", options, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        var leases = new List<KafkaPartitionLease>();
        for (var p = 0; p < partitions; p++)
        {
            leases.Add(await hub.AcquireAsync(topic, p, cancellationToken));
        }

        var cpu = new KafkaCpuMeter(mockPid);
        var clock = Stopwatch.StartNew();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(RunTimeout);
        var total = 0;
        await Task.WhenAll(leases.Select(lease => Task.Run(async () =>
        {
            var end = lease.HighWatermark ?? 0;
            long next = 0;
            while (next < messages / partitions && (end == 0 || next < end))
            {
                using var batch = await lease.ReadBatchAsync(variant.MaxPollRecords, deadline.Token);
                next = batch.LastOffset + 1;
                lease.MarkProcessed(batch.LastOffset);
                Interlocked.Add(ref total, batch.Count);
                end = lease.HighWatermark ?? end;
            }
        }, deadline.Token)));
        clock.Stop();
        var cpuUse = cpu.Stop(total);
        Console.WriteLine(
            $"  node read path only (hub + leases, {variant}): {F(total / clock.Elapsed.TotalSeconds)} msg/s ({total} records); {cpuUse}");
        foreach (var lease in leases)
        {
            await lease.DisposeAsync();
        }
    }

    /// <summary>The node's delivery path alone: batches of max_batch_size decoded envelopes through one CentrifugoClient into the stand-in,
    /// one sender per partition.</summary>
    private static async Task DeliveryOnlyAsync(
        CentrifugoStandIn standIn, int partitions, int messages, KafkaVariant variant, CancellationToken cancellationToken)
    {
        using var client = new Centrifugo.Actors.Delivery.CentrifugoClient(
            new ApiOptions { Url = standIn.Url, Key = standIn.ApiKey, MaxBatchSize = variant.MaxBatchSize },
            Microsoft.Extensions.Logging.Abstractions.NullLogger<Centrifugo.Actors.Delivery.CentrifugoClient>.Instance);
        var perPartition = messages / partitions;
        // The envelopes exist before the clock starts (as records do in Kafka): only decode, client and stand-in allocate.
        var envelopes = Enumerable.Range(0, variant.MaxBatchSize).Select(Envelope).ToArray();
        var cpu = new KafkaCpuMeter(null);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, partitions).Select(p => Task.Run(async () =>
        {
            for (var sent = 0; sent < perPartition; sent += variant.MaxBatchSize)
            {
                var commands = new List<Centrifugo.Actors.Delivery.ApiCommand>(variant.MaxBatchSize);
                for (var i = sent; i < Math.Min(perPartition, sent + variant.MaxBatchSize); i++)
                {
                    commands.Add(Centrifugo.Actors.Delivery.CommandDecoder.Decode(null, envelopes[i - sent]).Command!.Value);
                }

                var result = await client.DeliverAsync(commands, cancellationToken);
                if (result.Failure is not null)
                {
                    throw new InvalidOperationException(result.Failure.Message);
                }
            }
        }, cancellationToken)));
        clock.Stop();
        var cpuUse = cpu.Stop(perPartition * partitions);
        Console.WriteLine("  node delivery path only (decode + CentrifugoClient + in-process stand-in, " +
            $"batches of {variant.MaxBatchSize}): {F(perPartition * partitions / clock.Elapsed.TotalSeconds)} msg/s; {cpuUse}");
    }

    /// <summary>
    /// The in-process stand-in's own share of the delivery phase: the same /batch bodies (built once) posted by a bare
    /// HttpClient, one sender per partition; what the delivery phase allocates beyond this is the node's.
    /// </summary>
    private static async Task StandInOnlyAsync(
        CentrifugoStandIn standIn, int partitions, int messages, KafkaVariant variant, CancellationToken cancellationToken)
    {
        var commands = Enumerable.Range(0, variant.MaxBatchSize)
            .Select(i => Centrifugo.Actors.Delivery.CommandDecoder.Decode(null, Envelope(i)).Command!.Value).ToArray();
        var (buffer, length) = Centrifugo.Actors.Delivery.CentrifugoClient.BuildBatchBody(commands, 0, commands.Length);
        var body = buffer.AsSpan(0, length).ToArray();
        using var http = new HttpClient();
        http.DefaultRequestHeaders.TryAddWithoutValidation("X-API-Key", standIn.ApiKey);
        var uri = new Uri(standIn.Url.TrimEnd('/') + "/batch");
        var perPartition = messages / partitions / variant.MaxBatchSize * variant.MaxBatchSize;
        var cpu = new KafkaCpuMeter(null);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, partitions).Select(p => Task.Run(async () =>
        {
            for (var sent = 0; sent < perPartition; sent += variant.MaxBatchSize)
            {
                using var content = new ByteArrayContent(body);
                content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
                using var response = await http.PostAsync(uri, content, cancellationToken);
                response.EnsureSuccessStatusCode();
                await response.Content.CopyToAsync(Stream.Null, cancellationToken);
            }
        }, cancellationToken)));
        clock.Stop();
        var cpuUse = cpu.Stop(perPartition * partitions);
        Console.WriteLine($"  stand-in only (the same /batch bodies of {variant.MaxBatchSize} from a bare HttpClient): " +
            $"{F(perPartition * partitions / clock.Elapsed.TotalSeconds)} msg/s; {cpuUse}");
    }

    /// <summary>
    /// The librdkafka reference: a Confluent.Kafka consumer (same configuration and assignment as <see cref="Bare"/>)
    /// read with <c>rd_kafka_consume_batch_queue</c> on its consumer queue, 10,000 messages per call, each message's
    /// value length summed and the message destroyed (no copy); timed from the assignment to the last message.
    /// </summary>
    private static unsafe Reference BareBatch(string bootstrap, string topic, int partitions, int messages, int? mockPid)
    {
        using var consumer = BareConsumer(bootstrap, $"bench-batch-{Guid.NewGuid():N}");
        var queue = Librdkafka.rd_kafka_queue_get_consumer(Librdkafka.NativeHandle(consumer.Handle));
        var buffer = new Librdkafka.Message*[10_000];
        var cpu = new KafkaCpuMeter(mockPid);
        var clock = Stopwatch.StartNew();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var seen = 0;
        long bytes = 0;
        try
        {
            fixed (Librdkafka.Message** slots = buffer)
            {
                while (seen < messages)
                {
                    if (clock.Elapsed > RunTimeout)
                    {
                        throw new TimeoutException($"the batch consumer saw {seen} of {messages} within {RunTimeout}");
                    }

                    var n = (int)Librdkafka.rd_kafka_consume_batch_queue(queue, 100, slots, (nuint)buffer.Length);
                    for (var i = 0; i < n; i++)
                    {
                        if (slots[i]->Err == 0)
                        {
                            seen++;
                            bytes += (long)slots[i]->Length;
                        }

                        Librdkafka.rd_kafka_message_destroy(slots[i]);
                    }
                }
            }
        }
        finally
        {
            Librdkafka.rd_kafka_queue_destroy(queue);
        }

        clock.Stop();
        var cpuUse = cpu.Stop(messages);
        Console.WriteLine("  librdkafka batch consumer: " +
            $"{F(clock.Elapsed.TotalSeconds, "0.00")} s ({F(bytes / 1e6, "0.0")} MB of values); {cpuUse}; load {LoadAverage()}");
        consumer.Close();
        return new Reference(messages / clock.Elapsed.TotalSeconds, cpuUse);
    }

    /// <summary>
    /// Starts a node on the filled topic (fresh group: it starts at the beginning) and times until the stand-in
    /// accepted every message, from the node's start and from the moment all partitions run; then waits until the
    /// group's committed offsets reached the end of every partition.
    /// </summary>
    private static async Task<EndToEnd> EndToEndAsync(
        string bootstrap, CentrifugoStandIn standIn, string topic, int partitions, int messages, KafkaVariant variant, int? mockPid,
        CancellationToken cancellationToken)
    {
        var group = $"bench-e2e-{Guid.NewGuid():N}";
        var consumer = new KafkaConsumer
        {
            Name = "bench",
            Kafka = new KafkaConsumerOptions
            {
                Brokers = [bootstrap],
                Topics = [topic],
                ConsumerGroup = group,
                MaxPollRecords = variant.MaxPollRecords,
                PartitionQueueMaxSize = variant.QueueMaxSize,
                FetchMaxWait = TimeSpan.FromMilliseconds(variant.FetchMaxWaitMs),
            },
        };
        var nodeOptions = new NodeOptions
        {
            Api = new ApiOptions { Url = standIn.Url, Key = standIn.ApiKey, MaxBatchSize = variant.MaxBatchSize },
            Consumers = [consumer],
            Cluster = new ClusterOptions { Hostname = "127.0.0.1", Port = 0 },
            Admin = new AdminOptions { Address = "127.0.0.1:0" },
        };
        var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning).AddSimpleConsole(o => o.SingleLine = true));
        var before = standIn.ReceivedCount;
        var rejectedBefore = standIn.RejectedCount;
        var target = before + messages;
        var gcBefore = (
            Gen0: GC.CollectionCount(0), Gen1: GC.CollectionCount(1), Gen2: GC.CollectionCount(2), Pause: GC.GetTotalPauseDuration());
        var cpu = new KafkaCpuMeter(mockPid);
        var clock = Stopwatch.StartNew();
        var runtime = await NodeRuntime.StartAsync(nodeOptions, loggerFactory, cancellationToken);
        var app = NodeHost.Build(runtime, loggerFactory);
        await app.StartAsync(cancellationToken);
        await using var node = new BenchNode(runtime, app, loggerFactory);

        TimeSpan? running = null;
        long acceptedWhenRunning = 0;
        var requestsBefore = standIn.RequestsWithStatus(200);
        // Where a partition spends its time, sampled every loop: its librdkafka queue empty (waiting for Kafka) or full
        // (at partition_queue_max_size: librdkafka stops fetching it until the entity reads).
        long samples = 0, emptyQueues = 0, fullQueues = 0;
        // CPU from the moment all partitions run (start-up excluded), per record accepted after that.
        KafkaCpuMeter? cpuRunning = null;
        var hub = runtime.Kafka[consumer.Name].Hub;
        while (standIn.ReceivedCount < target)
        {
            if (running is not null)
            {
                foreach (var lease in hub.Leases)
                {
                    samples++;
                    emptyQueues += lease.QueuedCount == 0 ? 1 : 0;
                    fullQueues += lease.QueuedCount >= hub.QueueMaxRecords ? 1 : 0;
                }
            }

            if (clock.Elapsed > RunTimeout)
            {
                throw new TimeoutException($"the stand-in accepted {standIn.ReceivedCount - before} of {messages} within {RunTimeout}");
            }

            if (running is null
                && node.Board.Snapshot().Count(s => s.State is PartitionState.Idle or PartitionState.Delivering) >= partitions)
            {
                running = clock.Elapsed;
                acceptedWhenRunning = standIn.ReceivedCount - before;
                cpuRunning = new KafkaCpuMeter(mockPid);
            }

            await Task.Delay(5, cancellationToken);
        }

        clock.Stop();
        var cpuText = cpu.Stop(messages);
        var cpuRunningUse = cpuRunning?.Stop((int)Math.Max(1, messages - acceptedWhenRunning));
        var requests = standIn.RequestsWithStatus(200) - requestsBefore;
        var pause = GC.GetTotalPauseDuration() - gcBefore.Pause;
        var startup = running ?? clock.Elapsed;
        var fromRunning = (messages - acceptedWhenRunning) / (clock.Elapsed - startup).TotalSeconds;
        var committed = await WaitForCommittedEndAsync(bootstrap, group, topic, partitions, cancellationToken);
        var duplicates = standIn.ReceivedCount - target;
        Console.WriteLine(
            $"  node {variant}: {F(clock.Elapsed.TotalSeconds, "0.00")} s from start, " +
            $"partitions running after {F(startup.TotalSeconds, "0.00")} s ({acceptedWhenRunning} accepted by then); " +
            $"{requests} HTTP requests ({F(messages / (double)Math.Max(1, requests), "0.0")} commands each); " +
            $"partition queues empty {F(100.0 * emptyQueues / Math.Max(1, samples))}% " +
            $"/ full {F(100.0 * fullQueues / Math.Max(1, samples))}% of samples; " +
            $"{cpuText} (from partitions running: " +
            $"{cpuRunningUse?.ProcessMsPer1000.ToString("0.00", CultureInfo.InvariantCulture) ?? "-"} ms per 1,000, " +
            $"{cpuRunningUse?.AllocatedBytesPerMessage.ToString("0", CultureInfo.InvariantCulture) ?? "-"} B per msg); " +
            $"GC gen0/1/2 {GC.CollectionCount(0) - gcBefore.Gen0}/{GC.CollectionCount(1) - gcBefore.Gen1}/" +
            $"{GC.CollectionCount(2) - gcBefore.Gen2}, pauses {F(pause.TotalMilliseconds)} ms; " +
            $"committed offsets at the end after {F(committed.TotalSeconds, "0.0")} s; " +
            $"duplicates {duplicates}, rejected {standIn.RejectedCount - rejectedBefore}; load {LoadAverage()}");
        return new EndToEnd(messages / clock.Elapsed.TotalSeconds, fromRunning, clock.Elapsed.TotalSeconds, startup.TotalSeconds, cpuText,
            cpuRunningUse, duplicates);
    }

    /// <summary>Polls the group's committed offsets until every partition's equals its high watermark; returns how long that
    /// took.</summary>
    private static async Task<TimeSpan> WaitForCommittedEndAsync(
        string bootstrap, string group, string topic, int partitions, CancellationToken cancellationToken)
    {
        using var reader = BareConsumer(bootstrap, group);
        var tps = Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)).ToArray();
        var ends = tps.Select(tp => reader.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10)).High.Value).ToArray();
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var committed = reader.Committed(tps, TimeSpan.FromSeconds(10)).Select(c => c.Offset.Value).ToArray();
            if (committed.SequenceEqual(ends))
            {
                return clock.Elapsed;
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException(
                    $"committed offsets {string.Join(',', committed)} did not reach the ends {string.Join(',', ends)} within 30 s");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    /// <summary>The pid of this process's child whose command line contains <paramref name="name"/> (the mock host), if any.</summary>
    private static int? FindChildPid(string name)
    {
        var self = Environment.ProcessId;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var ppid = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                if (ppid == self && File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(name, StringComparison.Ordinal))
                {
                    return pid;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // the process ended while we read it
            }
        }

        return null;
    }

    /// <summary>CPU of this process (client, node, stand-in) and of the mock child over a timed section, in % of one core.</summary>
    private sealed class KafkaCpuMeter
    {
        private readonly int? _mockPid;
        private readonly TimeSpan _process = ProcessCpu();
        private readonly TimeSpan _mock;
        private readonly long _start = Stopwatch.GetTimestamp();
        private readonly long _allocated = GC.GetTotalAllocatedBytes();

        public KafkaCpuMeter(int? mockPid)
        {
            _mockPid = mockPid;
            _mock = MockCpu();
        }

        public CpuUse Stop(int messages)
        {
            var seconds = Stopwatch.GetElapsedTime(_start).TotalSeconds;
            var process = (ProcessCpu() - _process).TotalSeconds;
            var mock = _mockPid is null ? double.NaN : (MockCpu() - _mock).TotalSeconds;
            return new CpuUse(
                process / seconds * 100, mock / seconds * 100, process * 1000 / messages * 1000, mock * 1000 / messages * 1000,
                (GC.GetTotalAllocatedBytes() - _allocated) / (double)messages);
        }

        private TimeSpan MockCpu()
        {
            if (_mockPid is not { } pid || !File.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat"))
            {
                return TimeSpan.Zero;
            }

            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / 100.0);
        }
    }
}
