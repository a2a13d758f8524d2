namespace Centrifugo.Actors.Testing;

/// <summary>
/// The test lanes of <c>./scripts/test.sh</c>, as <c>[Trait(TestLane.Category, …)]</c> on a class or a test:
/// <list type="bullet">
/// <item><see cref="Fast"/> (<c>--fast</c>): pure and actor-level tests, run with <see cref="EnvironmentVariable"/> set.
/// In that lane every helper that would start PostgreSQL, a Kafka broker or a child process refuses, so a test marked
/// fast by mistake fails at once instead of slowing the lane down.</item>
/// <item><see cref="Slow"/> (left out by <c>--no-slow</c>): chaos and fail-over scenarios and tests that assert on
/// wall-clock time (an outage's or a hand-off's duration, what happens within a window), which take long and depend on
/// an unloaded machine. CI runs them; a developer may skip them.</item>
/// </list>
/// Everything else is neither: it needs infrastructure but no particular timing.
/// </summary>
internal static class TestLane
{
    public const string Category = "Category";
    public const string Fast = "Fast";
    public const string Slow = "Slow";
    public const string EnvironmentVariable = "CENTRIFUGO_ACTORS_TEST_LANE";

    public static bool IsFast => string.Equals(Environment.GetEnvironmentVariable(EnvironmentVariable), "fast", StringComparison.Ordinal);

    /// <summary>Throws in the fast lane: <paramref name="what"/> (a server, broker or child process) is not allowed there.</summary>
    public static void RequireInfrastructure(string what)
    {
        if (IsFast)
        {
            throw new InvalidOperationException(
                $"this test starts {what}, which the fast lane does not allow: remove its [Trait({Category}, {Fast})]");
        }
    }
}
