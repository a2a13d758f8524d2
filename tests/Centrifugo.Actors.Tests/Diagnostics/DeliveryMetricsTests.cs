using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Diagnostics;

namespace Centrifugo.Actors.Tests.Diagnostics;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class DeliveryMetricsTests
{
    private sealed class FixedClient(DeliveryResult result) : ICentrifugoClient
    {
        public Task<DeliveryResult> DeliverAsync(
            IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken, Func<bool>? mayStart = null,
            DeliveryWindow? window = null) =>
            Task.FromResult(result);
    }

    [Fact]
    public async Task The_error_label_takes_only_centrifugos_documented_codes_and_any_other_integer_is_other()
    {
        var consumer = "metrics_" + Guid.NewGuid().ToString("N");
        var codes = new int?[] { 102, 113, 987654, 99, 114, -1, null };
        var commands = codes.Select(_ => new ApiCommand(ApiMethods.Publish, """{"channel":"c","data":{}}"""u8.ToArray())).ToList();
        var client = new MeteredCentrifugoClient(
            new FixedClient(new DeliveryResult(codes.Select(c => CommandOutcome.Rejected(c, "refused")).ToList(), null)), consumer);

        await client.DeliverAsync(commands, CancellationToken.None);

        var series = MeteredCentrifugoClient.ApiErrors.GetAllLabelValues()
            .Where(l => l[0] == consumer)
            .ToDictionary(l => l[2], l => MeteredCentrifugoClient.ApiErrors.WithLabels(l).Value);
        Assert.Equal(new Dictionary<string, double> { ["102"] = 1, ["113"] = 1, ["other"] = 4, ["http"] = 1 }, series);
    }

    [Theory]
    [InlineData(100, "100")]
    [InlineData(107, "107")]
    [InlineData(113, "113")]
    [InlineData(114, "other")]
    [InlineData(500, "other")]
    [InlineData(0, "other")]
    [InlineData(int.MaxValue, "other")]
    [InlineData(null, "http")]
    public void Error_labels(int? code, string label) => Assert.Equal(label, MeteredCentrifugoClient.ErrorLabel(code));
}
