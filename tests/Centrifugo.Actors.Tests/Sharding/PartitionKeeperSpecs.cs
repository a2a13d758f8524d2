using Akka;
using Akka.Actor;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Sharding;

/// <summary>The keeper against a probe standing in for the shard region and catalogs standing in for the sources.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class PartitionKeeperSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ActorSpecs.Config, output)
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);

    [Fact]
    public void Every_known_partition_is_announced_at_start_and_on_every_tick()
    {
        var region = CreateTestProbe();
        var outbox = new FakeCatalog("pg:a:0", "pg:a:1");
        var kafka = new FakeCatalog("kafka:k:t:0");

        Sys.ActorOf(PartitionKeeper.Props(region.Ref, [outbox, kafka], Interval));

        var first = region.ReceiveN(3, TimeSpan.FromSeconds(5)).Cast<EnsurePartitionRunning>().Select(m => m.EntityId);
        Assert.Equal(["pg:a:0", "pg:a:1", "kafka:k:t:0"], first);

        kafka.Ids = ["kafka:k:t:0", "kafka:k:t:1"]; // a partition added to the topic
        region.FishForMessage(m => m is EnsurePartitionRunning { EntityId: "kafka:k:t:1" }, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void A_failing_catalog_is_asked_again_on_the_next_tick()
    {
        var region = CreateTestProbe();
        var catalog = new FakeCatalog("pg:a:0") { FailuresLeft = 2 };

        Sys.ActorOf(PartitionKeeper.Props(region.Ref, [catalog], Interval));

        region.ExpectMsg<EnsurePartitionRunning>(m => m.EntityId == "pg:a:0", TimeSpan.FromSeconds(5));
        Assert.True(catalog.Calls >= 3);
    }

    [Fact]
    public void A_catalog_that_does_not_answer_does_not_hold_the_partitions_of_the_others()
    {
        // K8: the Kafka catalog waits on broker metadata; while it does, the outbox partitions are still started.
        var region = CreateTestProbe();
        var kafka = new FakeCatalog("kafka:k:t:0");
        var gate = kafka.Hold();
        var outbox = new FakeCatalog("pg:a:0");

        Sys.ActorOf(PartitionKeeper.Props(region.Ref, [kafka, outbox], Interval));

        region.ExpectMsg<EnsurePartitionRunning>(m => m.EntityId == "pg:a:0", TimeSpan.FromSeconds(5));
        region.ExpectMsg<EnsurePartitionRunning>(m => m.EntityId == "pg:a:0", TimeSpan.FromSeconds(5));
        Assert.Equal(1, kafka.Calls); // not asked again while its first answer is pending
        gate.SetResult(["kafka:k:t:0"]);
        region.FishForMessage(m => m is EnsurePartitionRunning { EntityId: "kafka:k:t:0" }, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Nothing_is_announced_once_coordinated_shutdown_has_begun()
    {
        var region = CreateTestProbe();
        var catalog = new FakeCatalog("pg:a:0");
        var holdShutdown = new TaskCompletionSource<Done>(TaskCreationOptions.RunContinuationsAsynchronously);
        var shutdown = CoordinatedShutdown.Get(Sys);
        shutdown.AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "hold", () => holdShutdown.Task);
        Sys.ActorOf(PartitionKeeper.Props(region.Ref, [catalog], Interval));
        region.ExpectMsg<EnsurePartitionRunning>(TimeSpan.FromSeconds(5));

        // A discovery in flight when the shutdown begins: its answer arrives afterwards and must be dropped.
        var gate = catalog.Hold();
        var calls = catalog.Calls;
        AwaitCondition(() => catalog.Calls > calls, TimeSpan.FromSeconds(5));
        while (region.HasMessages)
        {
            region.ReceiveOne(TimeSpan.Zero);
        }
        var running = shutdown.Run(CoordinatedShutdown.UnknownReason.Instance);
        gate.SetResult(["pg:a:0", "pg:a:1"]);
        calls = catalog.Calls;

        region.ExpectNoMsg(Interval * 3);
        Assert.Equal(calls, catalog.Calls);
        holdShutdown.SetResult(Done.Instance);
        await running.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private sealed class FakeCatalog(params string[] ids) : IPartitionCatalog
    {
        private TaskCompletionSource<IReadOnlyList<string>>? _held;
        private int _calls;

        public IReadOnlyList<string> Ids { get; set; } = ids;
        public int FailuresLeft { get; set; }
        public int Calls => Volatile.Read(ref _calls);

        /// <summary>The next call waits until the returned source is completed.</summary>
        public TaskCompletionSource<IReadOnlyList<string>> Hold() =>
            _held = new TaskCompletionSource<IReadOnlyList<string>>(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<IReadOnlyList<string>> EntityIdsAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            if (FailuresLeft > 0)
            {
                FailuresLeft--;
                return Task.FromException<IReadOnlyList<string>>(new InvalidOperationException("catalog unavailable"));
            }
            var held = Interlocked.Exchange(ref _held, null);
            return held?.Task ?? Task.FromResult(Ids);
        }
    }
}
