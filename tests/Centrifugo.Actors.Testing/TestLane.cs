namespace Centrifugo.Actors.Testing;

/// <summary>
/// The fast lane (<c>./scripts/test.sh --fast</c>): tests marked <c>[Trait(TestLane.Category, TestLane.Fast)]</c>,
/// run with <see cref="EnvironmentVariable"/> set. In that lane every helper that would start PostgreSQL, a Kafka
/// broker or a child process refuses, so a test marked fast by mistake fails at once instead of slowing the lane down.
/// </summary>
internal static class TestLane
{
    public const string Category = "Category";
    public const string Fast = "Fast";
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
