using Centrifugo.Actors.Outbox;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Outbox;

/// <summary>Actor-level specs of the node's wake sources.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class NodeWakeSourcesSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ActorSpecs.Config, output)
{
    [Fact]
    public async Task A_source_that_fails_to_start_does_not_keep_the_others_from_running_and_all_stop_with_the_node()
    {
        var failing = new FakeWakeSource(fail: true);
        var listening = new FakeWakeSource(fail: false);

        var sources = EventFilter.Warning(start: "Wake source did not start").ExpectOne(
            () => Sys.ActorOf(NodeWakeSources.Props([() => failing, () => listening])));
        await listening.Started.Task.WaitAsync(TimeSpan.FromSeconds(5));

        Watch(sources);
        Sys.Stop(sources);
        ExpectTerminated(sources);
        AwaitCondition(() => listening.Disposed && failing.Disposed && listening.Token.IsCancellationRequested,
            TimeSpan.FromSeconds(5));
    }

    private sealed class FakeWakeSource(bool fail) : IWakeSource
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public CancellationToken Token { get; private set; }
        public bool Disposed { get; private set; }

        public Task StartAsync(CancellationToken cancellationToken)
        {
            Token = cancellationToken;
            if (fail)
            {
                return Task.FromException(new InvalidOperationException("LISTEN refused"));
            }
            Started.TrySetResult();
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
