using System.Text.Json;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Demo;

internal static class DemoOrder
{
    /// <summary>Places where channel <c>prefix + p</c> received a lower <c>data.seq</c> after a higher one.</summary>
    public static int Violations(CentrifugoStandIn standIn, string prefix, int partitions)
    {
        var violations = 0;
        for (var p = 0; p < partitions; p++)
        {
            long last = -1;
            foreach (var command in standIn.ReceivedFor($"{prefix}{p}"))
            {
                using var doc = JsonDocument.Parse(command.RequestJson);
                var seq = doc.RootElement.GetProperty("data").GetProperty("seq").GetInt64();
                if (seq < last)
                {
                    violations++;
                }
                last = Math.Max(last, seq);
            }
        }
        return violations;
    }
}
