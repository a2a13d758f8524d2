using System.Net.Sockets;
using Centrifugo.Actors.Delivery;

namespace Centrifugo.Actors.Tests.Delivery;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class DeliveryClassifierTests
{
    private const string Endpoint = "http://centrifugo:8000/api/batch";

    [Theory]
    [InlineData(100, nameof(DeliveryDecision.Retry))]
    [InlineData(102, nameof(DeliveryDecision.Rejected))]
    [InlineData(104, nameof(DeliveryDecision.Rejected))]
    [InlineData(107, nameof(DeliveryDecision.Rejected))]
    [InlineData(108, nameof(DeliveryDecision.Rejected))]
    [InlineData(113, nameof(DeliveryDecision.Rejected))]
    [InlineData(0, nameof(DeliveryDecision.Rejected))]
    public void Only_error_code_100_is_retried(int code, string expected)
    {
        var c = DeliveryClassifier.ForReplyError(code, "m");
        Assert.Equal(expected, c.Decision.ToString());
        Assert.Equal(code, c.Code);
        Assert.Equal($"centrifugo error {code}: m", c.Message);
    }

    [Theory]
    [InlineData(400, true, nameof(DeliveryDecision.Isolate))]
    [InlineData(413, true, nameof(DeliveryDecision.Isolate))]
    [InlineData(400, false, nameof(DeliveryDecision.Rejected))]
    [InlineData(413, false, nameof(DeliveryDecision.Rejected))]
    [InlineData(401, false, nameof(DeliveryDecision.Stall))]
    [InlineData(403, true, nameof(DeliveryDecision.Stall))]
    [InlineData(404, true, nameof(DeliveryDecision.Stall))]
    [InlineData(405, false, nameof(DeliveryDecision.Stall))]
    [InlineData(301, false, nameof(DeliveryDecision.Stall))]
    [InlineData(418, false, nameof(DeliveryDecision.Stall))]
    [InlineData(408, true, nameof(DeliveryDecision.Retry))]
    [InlineData(429, true, nameof(DeliveryDecision.Retry))]
    [InlineData(500, true, nameof(DeliveryDecision.Retry))]
    [InlineData(503, false, nameof(DeliveryDecision.Retry))]
    [InlineData(504, false, nameof(DeliveryDecision.Retry))]
    public void Http_statuses_map_to_one_decision(int status, bool batch, string expected) =>
        Assert.Equal(expected, DeliveryClassifier.ForStatus(status, batch, "publish", Endpoint).Decision.ToString());

    [Theory]
    [InlineData(100, 500)]
    [InlineData(102, 404)]
    [InlineData(104, 404)]
    [InlineData(107, 400)]
    [InlineData(108, 400)]
    [InlineData(112, 416)]
    [InlineData(113, 409)]
    [InlineData(101, 500)]
    [InlineData(199, 500)]
    [InlineData(99, 0)]
    [InlineData(200, 0)]
    [InlineData(404, 0)]
    [InlineData(500, 0)]
    [InlineData(0, 0)]
    [InlineData(-1, 0)]
    public void Transport_mode_statuses_are_centrifugos_and_only_for_its_codes(int code, int status) =>
        Assert.Equal(status, DeliveryClassifier.TransportStatusOf(code));

    [Fact]
    public void Status_messages_say_what_to_fix()
    {
        Assert.Equal($"401 Unauthorized from {Endpoint}: api.key is wrong",
            DeliveryClassifier.ForStatus(401, true, "batch", Endpoint).Message);
        Assert.Equal("400 Bad Request: request JSON does not match method refresh",
            DeliveryClassifier.ForStatus(400, false, "refresh", Endpoint).Message);
        Assert.StartsWith("503 Service Unavailable from", DeliveryClassifier.ForStatus(503, true, "batch", Endpoint).Message);
    }

    [Fact]
    public void Transport_failures_and_timeouts_are_temporary()
    {
        var refused = DeliveryClassifier.ForException(
            new HttpRequestException("boom", new SocketException((int)SocketError.ConnectionRefused)), Endpoint);
        Assert.Equal(DeliveryDecision.Retry, refused.Decision);
        Assert.Equal($"cannot reach {Endpoint}: ConnectionRefused", refused.Message);
        Assert.Equal(DeliveryDecision.Retry, DeliveryClassifier.ForTimeout(Endpoint, TimeSpan.FromSeconds(5)).Decision);
        Assert.Equal(DeliveryDecision.Retry, DeliveryClassifier.ForUnexpectedBody(Endpoint, "x").Decision);
        Assert.Equal(FailureKind.Temporary, DeliveryClassifier.ToFailureKind(DeliveryDecision.Retry));
        Assert.Equal(FailureKind.Configuration, DeliveryClassifier.ToFailureKind(DeliveryDecision.Stall));
    }
}
