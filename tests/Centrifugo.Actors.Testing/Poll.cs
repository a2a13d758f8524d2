using System.Diagnostics;

namespace Centrifugo.Actors.Testing;

/// <summary>Condition polling with a deadline: the only way the tests wait for something to happen.</summary>
internal static class Poll
{
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(10);
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > limit)
            {
                throw new TimeoutException($"timed out after {limit} waiting for: {what}");
            }

            await Task.Delay(20);
        }
    }

    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, timeout);
}
